import test from 'ava';
import { validateCluster } from '../src/sim/cluster.js';
import { allReduceUs } from '../src/sim/collectives/all-reduce.js';
import { resolveLayout } from '../src/sim/layout.js';
import { activationBytesPerToken, stageParams } from '../src/sim/memory.js';
import { blockParams } from '../src/core/model/params.js';
import { project } from '../src/sim/project.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { cfg } from './helpers.js';

// On a cluster that computes in fp32 (this machine's tfjs training), every value moved or stored is 4
// bytes: gradients reduced, parameters gathered, weights, gradients and activations held. Worked by hand.

const close = (a: number, b: number, rel = 1e-12) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
/** one node of 8, NVLink-like 100 GB/s and 2 µs a step, 1 µs a launch; fp32 */
const fp32 = validateCluster({
  name: 'fp32', nodes: 1, gpus_per_node: 8,
  gpu: { name: 'test', tflops_bf16: 100, tflops_fp32: 10, hbm_gbps: 1000, memory_gb: 80, matmul_efficiency: 1 },
  intra_node: { gbps: 100, latency_us: 2 }, inter_node: { gbps: 10, latency_us: 5 }, collective_latency_us: 1, all_to_all: 'flat', precision: 'fp32',
});
const sets = ['parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=16', 'data.seq_len=64'];

test('fp32: the data-parallel all-reduce carries 4-byte gradients (ring: 1 + 14·2 µs + (14/8)·B / 100 GB/s)', (t) => {
  const config = cfg(...sets);
  const L = resolveLayout(config, fp32, 65);
  const { dense } = stageParams(config, L, 0);
  const ar = project(fp32, uniformWorkload(config)).collectives.find((x) => x.name === 'dp all_reduce (dense gradients)')!;
  t.is(ar.bytes, 4 * dense);
  t.true(close(ar.us_each, 1 + 14 * 2 + ((14 / 8) * 4 * dense) / 100e9 * 1e6));
  t.true(close(ar.us_each, allReduceUs(fp32, L.groups.dp, 4 * dense)));
});

test('fp32: FSDP gathers 4-byte parameters', (t) => {
  const config = cfg(...sets, 'plan.shard=full', 'plan.micro_batch=1');
  const p = blockParams(config, 0);
  const ag = project(fp32, uniformWorkload(config)).collectives.find((x) => x.name === 'fsdp all_gather')!;
  t.is(ag.bytes, 4 * (p.norms + p.attention + p.ffn) + (4 * p.experts) / 8);
});

test('fp32: weights and gradients 4 bytes a parameter, Adam\'s m and v 8 (the weights are their own master copy)', (t) => {
  const config = cfg(...sets);
  const L = resolveLayout(config, fp32, 65);
  const { dense, experts } = stageParams(config, L, 0);
  const m = project(fp32, uniformWorkload(config)).memory;
  t.true(close(m.weights_gb, (4 * (dense + experts)) / 1e9));
  t.true(close(m.grads_gb, (4 * (dense + experts)) / 1e9));
  t.true(close(m.optimizer_gb, (8 * (dense + experts)) / 1e9));
});

test('fp32 activations: twice the bf16 values, dropout masks still a byte an element', (t) => {
  // d 64, 4 heads, d_ff 128 (relu), top-1: per token and block, in bf16 bytes, norms 4d + attention (2d + 6d + 2d)
  // + one expert copy (2d + 4·128) = 1,536; in fp32 twice that, plus two 1-byte masks of d with dropout
  const config = cfg(...sets, 'model.dropout=0.1');
  const L = resolveLayout(config, fp32, 65);
  t.is(activationBytesPerToken(config, L, 0, 2), 1536 + 2 * 64);
  t.is(activationBytesPerToken(config, L, 0, 4), 2 * 1536 + 2 * 64);
});
