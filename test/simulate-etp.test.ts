import test from 'ava';
import { resolveConfig } from '../src/core/config/load.js';
import { loadCluster } from '../src/sim/cluster.js';
import { activationBytesPerToken } from '../src/sim/memory.js';
import { project } from '../src/sim/project.js';
import { resolveLayout } from '../src/sim/layout.js';
import { uniformWorkload } from '../src/sim/workload.js';

// Expert tensor parallelism: the etp ranks all-gather the rows each received, and each computes all of them for
// its 1/etp of every expert's hidden size. Mixtral-8x7B (8 experts of 14,336, top-2) on 64×8 H100, tp 4, ep 8:
// with etp 4 a GPU runs 4× the rows of etp 1 at a quarter of the hidden size, so the same expert FLOPs a GPU.
const cluster = loadCluster('configs/clusters/64x8xh100.yaml');
const config = (etp: number) => resolveConfig({
  file: 'configs/models/mixtral-8x7b.yaml',
  sets: ['plan.tp=4', 'plan.pp=1', 'plan.vpp=1', 'plan.ep=8', `plan.etp=${etp}`, 'plan.micro_batch=4', 'plan.recompute=none'],
}).config;

test('etp splits each expert across its ranks without dividing the expert FLOPs a GPU computes', (t) => {
  const [one, four] = [1, 4].map((etp) => project(cluster, uniformWorkload(config(etp))));
  // the same FLOPs in different GEMM shapes ([4m, d]·[d, F/4] instead of [m, d]·[d, F]): within the GEMM table's spread
  const ratio = four!.breakdown_ms.experts / one!.breakdown_ms.experts;
  t.true(ratio > 0.8 && ratio < 1.25, `experts ${four!.breakdown_ms.experts} ms with etp 4 against ${one!.breakdown_ms.experts} with etp 1`);
  t.true(four!.mfu < 0.75, `MFU ${four!.mfu}`);
});

test('etp keeps every gathered row\'s activations: k · etp copies of (2h input + the hidden share F/etp) a token', (t) => {
  const h = 4096;
  const F = 14336;
  const bytes = (etp: number) => {
    const c = config(etp);
    return activationBytesPerToken(c, resolveLayout(c, cluster, 32000), 0, 2);
  };
  // SwiGLU's hidden keeps 6 bytes an element of F (ffnHiddenBytes); everything ÷ tp 4 after
  const moe = (etp: number) => (2 * etp * (2 * h + (6 * F) / etp)) / 4;
  t.is(bytes(4) - bytes(1), moe(4) - moe(1));
});
