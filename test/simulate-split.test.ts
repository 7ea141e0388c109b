import test from 'ava';
import { validateCluster, type Cluster } from '../src/sim/cluster.js';
import { resolveLayout } from '../src/sim/layout.js';
import { project } from '../src/sim/project.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { cfg } from './helpers.js';

// The pipeline split in the projection (layout.ts reads src/core/config/pipeline-split.ts), its stage times and the
// bubble, worked by hand on a cluster where only FLOPs cost time: 100 TFLOP/s at full efficiency, no kernel floor,
// no tile padding, HBM and links so fast that bytes and sends cost nothing measurable.
const close = (a: number, b: number, rel = 1e-6) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
const cluster: Cluster = validateCluster({
  name: 'flops', nodes: 1, gpus_per_node: 8,
  gpu: { name: 'flops', tflops_bf16: 100, tflops_fp32: 100, hbm_gbps: 1e12, matmul_efficiency: 1 },
  intra_node: { gbps: 1e12, latency_us: 0 }, inter_node: { gbps: 1e12, latency_us: 0 }, collective_latency_us: 0, all_to_all: 'flat', precision: 'bf16',
});
const RATE = 100e12;

// d 64, 4 heads, d_ff 128 (relu), 4 experts top-1 on each GPU (ep 1), vocabulary 100, one sequence of 64 a micro-batch
const shape = ['parallel.devices=4', 'model.vocab_size=100', 'moe.drop_tokens=false', 'plan.ep=1', 'data.batch_size=16', 'data.seq_len=64',
  'plan.micro_batch=1'];
const T = 64;
const d = 64;
/** One Switch block, forward + backward (GEMMs 3× their forward, flash attention 3.5×), µs */
const gemmFwd = 2 * T * d * 3 * d + 2 * T * d * d + 2 * T * d * 4 + 4 * T * 1 * d * 128; // qkv, out, router, the expert's up and down
const attentionFwd = 2 * T * T * d; // Megatron's causal count, 2·s²·h
const BLOCK = ((3 * gemmFwd + 3.5 * attentionFwd) / RATE) * 1e6;
/** The output layer and loss, forward + backward */
const HEAD = ((3 * 2 * T * d * 100) / RATE) * 1e6;

const stages = (...sets: string[]) => {
  const p = project(cluster, uniformWorkload(cfg(...shape, ...sets)));
  return { p, L: resolveLayout(cfg(...shape, ...sets), cluster, 65) };
};

test('hand-worked: the block and head times the cases below rest on', (t) => {
  t.true(HEAD < BLOCK, `the head (${HEAD} µs) costs less than a block (${BLOCK} µs)`);
  const { p } = stages('model.n_layers=1');
  t.true(close(p.detail!.stage.total_us, BLOCK + HEAD), `one block and the head: ${p.detail!.stage.total_us} vs ${BLOCK + HEAD}`);
});

test('10 blocks on pp 4: the remainder split [3, 3, 2, 2] (switch-sim\'s, where Megatron-Core refuses); a 3-block rank paces', (t) => {
  const { p, L } = stages('model.n_layers=10', 'plan.pp=4');
  t.deepEqual(L.stages, [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]);
  t.is(L.split.rule, 'remainder');
  t.is(L.microBatches, 8);
  // ranks: 3B, 3B, 2B, 2B + H; the slowest 3B paces all 8 micro-batches and the (pp − 1) = 3 of fill and drain
  t.true(close(p.detail!.stage.total_us, 3 * BLOCK));
  t.true(close(p.breakdown_ms.bubble, (3 * 3 * BLOCK) / 1000));
  t.true(close(p.bubble_fraction, 3 / 8));
});

test('first/last counts move blocks: first 1, last 3 leaves 3 a middle rank, and the last rank (3 blocks + the head) paces', (t) => {
  const { p, L } = stages('model.n_layers=10', 'plan.pp=4', 'plan.decoder_first_pipeline_num_layers=1', 'plan.decoder_last_pipeline_num_layers=3');
  t.deepEqual(L.stages.map((s) => s.length), [1, 3, 3, 3]);
  t.is(L.split.rule, 'first_last');
  t.is(p.detail!.stage.stage, 3);
  t.true(close(p.detail!.stage.total_us, 3 * BLOCK + HEAD));
  t.true(close(p.breakdown_ms.bubble, (3 * (3 * BLOCK + HEAD)) / 1000), 'the bubble is (pp − 1) of the slowest rank\'s micro-batch');
});

test('the embedding and loss as slots: 12 slots, 3 a rank; the ends hold 2 blocks, the middle ranks 3 pace', (t) => {
  const { p, L } = stages('model.n_layers=10', 'plan.pp=4', 'plan.account_for_embedding_in_pipeline_split=true',
    'plan.account_for_loss_in_pipeline_split=true');
  t.deepEqual(L.stages, [[0, 1], [2, 3, 4], [5, 6, 7], [8, 9]]);
  t.true(close(p.detail!.stage.total_us, 3 * BLOCK), 'the last rank, 2B + H, is lighter than 3B');
  t.true(close(p.breakdown_ms.bubble, (3 * 3 * BLOCK) / 1000));
});

test('interleaving: 8 blocks on pp 2 × vpp 2, each rank two chunks in layer order; the bubble is (pp − 1)/vpp of the slowest', (t) => {
  const { p, L } = stages('model.n_layers=8', 'plan.pp=2', 'plan.vpp=2');
  // chunk (stage v, rank r) holds blocks 2(2v + r), 2(2v + r) + 1: rank 0 [0,1][4,5], rank 1 [2,3][6,7]
  t.deepEqual(L.stages, [[0, 1, 4, 5], [2, 3, 6, 7]]);
  t.true(close(p.detail!.stage.total_us, 4 * BLOCK + HEAD));
  t.true(close(p.breakdown_ms.bubble, ((4 * BLOCK + HEAD) * 1) / 2 / 1000));
  // 9 blocks and the loss's slot: 10 slots, 5 a rank, 1 a chunk on vpp 5; the loss's chunk (stage 4, rank 1) builds none
  const slots = stages('model.n_layers=9', 'plan.pp=2', 'plan.vpp=5', 'plan.account_for_loss_in_pipeline_split=true');
  t.deepEqual(slots.L.stages, [[0, 2, 4, 6, 8], [1, 3, 5, 7]]);
});

test('Qwen3-235B-A22B\'s 94 blocks on pp 8 × vpp 4 (research §1.6): expressible only with the embedding and loss slots', (t) => {
  const qwen = (...sets: string[]) => cfg('model.n_layers=94', 'parallel.devices=4', 'data.batch_size=64', 'plan.pp=8', 'plan.vpp=4', ...sets);
  const c = validateCluster({ ...cluster, nodes: 8 });
  const L = resolveLayout(qwen('plan.account_for_embedding_in_pipeline_split=true', 'plan.account_for_loss_in_pipeline_split=true'), c, 65);
  t.is(L.split.rule, 'accounting');
  t.deepEqual(L.stages.map((s) => s.length), [11, 12, 12, 12, 12, 12, 12, 11], 'ranks 0 and 7 give a slot each to the embedding and loss');
  t.deepEqual(L.stages[0]!.slice(0, 4), [0, 1, 23, 24], 'chunk (0, 0) builds 2 blocks, chunk (1, 0) starts at 24 − 1');
  t.throws(() => qwen('plan.decoder_first_pipeline_num_layers=10'),
    { message: /plan\.decoder_first_pipeline_num_layers must be divisible by plan\.vpp \(4\) \(got 10\)/ });
});
