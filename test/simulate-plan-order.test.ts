import test from 'ava';
import { resolveConfig } from '../src/core/config/load.js';
import { loadCluster } from '../src/sim/cluster.js';
import { project } from '../src/sim/project.js';
import { uniformWorkload } from '../src/sim/workload.js';

// Contrasting plans of one model on one cluster, in the order first principles predict. Nothing here is fitted:
// the order was reasoned out below from the shapes and the cited constants, then asserted.
//
// Qwen3-30B-A3B (d 2048, 48 blocks, 128 experts of 768, top-8, vocab 151,936) on 2×8 H100, 512 sequences of 4,096
// a step. Every plan does the same model FLOPs per GPU; they differ in what each adds to them.
//  P4  FSDP without EP, micro-batch 4, full recompute: no all-to-all at all. Each GPU runs all 128 experts on its
//      16,384 tokens (1,024 rows an expert: m·k·n / (m·k + k·n + m·n) ≈ 400 FLOP a byte, above the H100's ~330, so
//      its GEMMs are compute-bound) and gathers a block's 1.2 GB of weights over 16 GPUs (~3.5 ms) behind the
//      block's ~20 ms of compute. It pays the forward again: about a third more compute.
//  P2  distributed optimizer, EP 8, micro-batch 1, selective recompute (the shipped plan): no recompute to speak
//      of, but four all-to-alls a block carrying 8 copies of a 4 KB row a token (~130 KB a token a block over
//      NVLink at ~370 GB/s, ~0.35 µs) and the sort of the received rows into expert order (4 row copies a copy,
//      at the permutation's 0.43 of HBM), together more than P4's forward again (~0.4 µs a token a block): P4 < P2.
//  P3  FSDP, EP 8, micro-batch 4, full recompute: P2's exchanges and P4's recompute, which re-runs the dispatch
//      (6 all-to-alls a block, not 4): P2 < P3.
//  P1  TP 4, PP 4, EP 4, micro-batch 1, no recompute: saves the recompute but (i) the last of 4 stages holds 12
//      blocks and the LM head (2,048 × 151,936: ~4 blocks' FLOPs), so it carries ~16 blocks' work for the mean
//      stage's 13 and paces all; (ii) four sequence-parallel collectives of 16.8 MB a block a micro-batch; (iii)
//      1,024 tokens a GPU leave 256 rows an expert, whose GEMMs read each expert's 6.3 MB weights for 1.6 GFLOP
//      (twice their compute time) and add their weight gradients into a 6.3 MB buffer read and written; (iv)
//      ~130 kernels a block pass issued at 11–16 µs each (~1.7 ms), as long as the GPU's pass. Slowest: P3 < P1.
const cluster = loadCluster('configs/clusters/2x8xh100.yaml');
const plan = (sets: string) => {
  const config = resolveConfig({ file: 'configs/models/qwen3-30b-a3b.yaml', sets: ['plan.global_batch=512', ...sets.split(' ')] }).config;
  return project(cluster, uniformWorkload(config));
};

test('Qwen3-30B-A3B on 2×8 H100: FSDP without EP < the shipped plan < FSDP with EP < TP 4 · PP 4 · micro-batch 1', (t) => {
  const P4 = plan('plan.tp=1 plan.pp=1 plan.ep=1 plan.micro_batch=4 plan.recompute=full plan.shard=full');
  const P2 = plan('plan.tp=1 plan.pp=1 plan.ep=8 plan.micro_batch=1 plan.recompute=selective plan.shard=optimizer');
  const P3 = plan('plan.tp=1 plan.pp=1 plan.ep=8 plan.micro_batch=4 plan.recompute=full plan.shard=full');
  const P1 = plan('plan.tp=4 plan.pp=4 plan.ep=4 plan.micro_batch=1 plan.recompute=none plan.shard=optimizer');
  const steps = [P4, P2, P3, P1].map((p) => p.step_ms);
  t.log(`P4 ${steps[0]!.toFixed(0)} ms, P2 ${steps[1]!.toFixed(0)}, P3 ${steps[2]!.toFixed(0)}, P1 ${steps[3]!.toFixed(0)}`);
  t.deepEqual([...steps].sort((a, b) => a - b), steps, 'P4 < P2 < P3 < P1');
  for (const p of [P4, P2, P3, P1]) t.true(p.fits, `${p.plan.tp}/${p.plan.pp}/${p.plan.ep} fits 80 GB`);
  // the mechanisms the reasoning names, each where it says
  t.is(P4.breakdown_ms.all_to_all, 0);
  t.true(P3.breakdown_ms.all_to_all > P2.breakdown_ms.all_to_all, 'full recompute runs the dispatch again');
  t.true(P1.breakdown_ms.tensor_parallel > 0 && P1.breakdown_ms.host > 0, 'P1: sequence-parallel collectives and host-paced passes');
  // (iii): the experts' time per token of the step, 256 rows an expert (P1) against 2,048 (P2, the same 4,096-token micro-batch)
  t.true(P1.breakdown_ms.experts > 1.3 * P2.breakdown_ms.experts, `experts ${P1.breakdown_ms.experts.toFixed(0)} vs ${P2.breakdown_ms.experts.toFixed(0)} ms`);
});
