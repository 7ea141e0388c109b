import test from 'ava';
import { allReduceUs } from '../src/sim/collectives/all-reduce.js';
import { validateCluster, type Cluster } from '../src/sim/cluster.js';
import { cpExchange } from '../src/sim/context-parallel.js';
import { resolveLayout } from '../src/sim/layout.js';
import { memoryUse, stageParams } from '../src/sim/memory.js';
import { project } from '../src/sim/project.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { cfg } from './helpers.js';

// Context parallelism (plan.cp) in closed form: Megatron-Core's folding (dense tp · cp · dp · pp = GPUs, experts
// etp · ep · edp · pp over the same GPUs), activations ÷ cp, dense gradients over dp · cp, and the p2p ring of K/V
// blocks, exposed only where a step's transfer outlasts the attention of the block it holds.
const close = (a: number, b: number, rel = 1e-9) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
/** 8 GPUs on one node: NVLink 10 GB/s, 2 µs a step, 1 µs a launch; `tflops` of compute at full efficiency */
const cluster = (tflops: number): Cluster => validateCluster({
  name: 'test', nodes: 1, gpus_per_node: 8,
  gpu: { name: 'test', tflops_bf16: tflops, tflops_fp32: tflops, hbm_gbps: 1000, matmul_efficiency: 1, memory_gb: 80 },
  intra_node: { gbps: 10, latency_us: 2 }, inter_node: { gbps: 10, latency_us: 5 }, collective_latency_us: 1, all_to_all: 'flat', precision: 'bf16',
});
// d 64, 4 heads of 16, 2 blocks, 4 experts; 16 sequences of 64 a step, one a micro-batch
const shape = ['parallel.devices=4', 'data.batch_size=16', 'data.seq_len=64', 'plan.micro_batch=1', 'moe.drop_tokens=false'];

test('folding: cp 2 on 8 GPUs leaves dp 4 for the dense layers; the experts fold over all 8 (ep 4, edp 2)', (t) => {
  const L = resolveLayout(cfg(...shape, 'plan.cp=2'), cluster(100), 65);
  t.like(L, { tp: 1, cp: 2, dp: 4, ep: 4, edp: 2, microBatches: 4, seq: 32, seqLen: 64, tokensPerGpu: 32 });
  t.deepEqual(L.groups.cp, { ranks: 2, perNode: 2, nodes: 1 });
  t.deepEqual(L.groups.dp, { ranks: 8, perNode: 8, nodes: 1 }, 'dense gradients over dp · cp (Megatron-Core\'s dp-cp group)');
  t.throws(() => resolveLayout(cfg(...shape, 'plan.cp=16'), cluster(100), 65),
    { message: 'config error: plan.tp × plan.cp × plan.pp must divide test\'s 8 GPUs (got 1 × 16 × 1 = 16)' });
  t.throws(() => cfg(...shape, 'plan.cp=3'), { message: /plan\.cp must be 1 or have 2 · plan\.cp divide data\.seq_len \(64\)/ });
});

test('the K/V ring by hand: (cp − 1) steps, each exposed by what its send outlasts the attention of one block', (t) => {
  const config = cfg(...shape, 'plan.cp=2');
  const slow = cluster(100);
  const L = resolveLayout(config, slow, 65);
  // a GPU's attention: its 32 queries against all 64 keys, Megatron's causal count 2·q·s·h; K and V of 4 heads of 16
  const A = ((2 * 32 * 64 * 64) / 100e12) * 1e6;
  const bytes = 32 * (2 * 4 * 16) * 2;
  const X = 1 + 2 + (bytes / 10e9) * 1e6; // a launch, a step, the bytes
  const X2 = 1 + 2 + ((2 * bytes) / 10e9) * 1e6; // backward: K/V on and their gradients back
  const x = cpExchange(slow, config, L, 2);
  t.is(x.bytes, bytes);
  t.true(close(x.send_us, X));
  t.true(close(x.exposed_us, (X - A / 2) + (X2 - (2.5 * A) / 2)));
  // attention a million times slower hides every step
  t.is(cpExchange(cluster(1e-4), config, resolveLayout(config, cluster(1e-4), 65), 2).exposed_us, 0);
  // recomputing the attention core runs the forward ring again
  const again = cfg(...shape, 'plan.cp=2', 'plan.recompute=selective', 'plan.recompute_modules=[core_attn]');
  t.true(close(cpExchange(slow, again, L, 2).exposed_us, 2 * (X - A / 2) + (X2 - (2.5 * A) / 2)));
  // in the step: every block's ring, a part of its own
  const p = project(slow, uniformWorkload(config));
  t.true(close(p.breakdown_ms.context_parallel, (2 * x.exposed_us * L.microBatches) / 1000));
  t.true(close((p.tokens_per_s * p.step_ms) / 1000, 16 * 64), 'tokens a step count whole sequences');
  t.is(p.plan.cp, 2);
});

test('activations ÷ cp, dense gradients reduced and the optimizer sharded over dp · cp', (t) => {
  const c = cluster(100);
  const one = cfg(...shape, 'plan.shard=optimizer');
  const two = cfg(...shape, 'plan.shard=optimizer', 'plan.cp=2');
  const L1 = resolveLayout(one, c, 65);
  const L2 = resolveLayout(two, c, 65);
  const m1 = memoryUse(one, L1, 2, 0);
  const m2 = memoryUse(two, L2, 2, 0);
  t.true(close(m2.activations_gb, m1.activations_gb / 2), 'each GPU keeps half of each sequence');
  const { dense, experts } = stageParams(two, L2, 0);
  t.true(close(m2.optimizer_gb, (12 * (dense / 8 + experts / 2)) / 1e9), 'dense state over dp · cp = 8, experts over edp 2');
  const p = project(c, uniformWorkload(cfg(...shape, 'plan.cp=2')));
  const ar = p.collectives.find((x) => x.name.startsWith('dp all_reduce'))!;
  t.true(close(ar.us_each, allReduceUs(c, L2.groups.dp, 2 * dense)));
});
