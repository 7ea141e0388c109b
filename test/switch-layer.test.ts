import test from 'ava';
import { backend, cfg, maxAbsDiff, randomArray } from './helpers.js';
import { referenceSwitch, runSwitch } from './switch-harness.js';

test.before(backend);

const N = 64;
const base = ['model.d_model=16', 'model.d_ff=32', 'moe.n_experts=4', 'parallel.devices=2', 'data.batch_size=2', 'moe.min_capacity=1', 'moe.init_scale=1'];

async function compare(t: import('ava').ExecutionContext, sets: string[], logitsFor?: (t: number, e: number) => number) {
  const config = cfg(...base, ...sets);
  const d = config.model.d_model;
  const E = config.moe.n_experts;
  const u = randomArray(N * d, 11);
  const logits = logitsFor ? Float32Array.from({ length: N * E }, (_, i) => logitsFor(Math.floor(i / E), i % E)) : randomArray(N * E, 5, 2);
  const run = await runSwitch(config, u, logits);
  const ref = referenceSwitch(config, u, logits);
  t.true(maxAbsDiff(run.y, ref.y) < 1e-5, `max diff ${maxAbsDiff(run.y, ref.y)}`);
  const refKept = ref.kept.flat().filter(Boolean).length;
  t.is(run.plan.slot.filter((s) => s >= 0).length, refKept);
  return { run, ref, config };
}

for (const policy of ['position', 'random', 'priority']) {
  test(`Switch layer equals the per-token reference, drop_policy ${policy}, with drops`, async (t) => {
    const { run } = await compare(t, [`moe.drop_policy=${policy}`, 'moe.capacity_factor=0.75']);
    t.true(run.plan.dropped > 0, 'this case must drop tokens');
  });
}

test('an expert that gets no token: its slots are empty and outputs still match', async (t) => {
  const { run } = await compare(t, [], (_t, e) => (e === 3 ? -20 : 0.1 * Math.sin(_t * (e + 1))));
  t.is(run.plan.counts[3], 0);
  t.is(run.plan.counts[7], 0);
});

test('all tokens to one expert: only C per group are kept (position order)', async (t) => {
  const { run } = await compare(t, ['moe.capacity_factor=1'], (_t, e) => (e === 2 ? 5 : 0));
  const C = run.plan.capacity;
  t.is(C, 8); // ⌊1.0 · 32 / 4⌋
  t.deepEqual(Array.from(run.plan.counts), [0, 0, 8, 0, 0, 0, 8, 0]);
  // position policy keeps the first C tokens of each group
  for (let tok = 0; tok < N; tok++) t.is(run.plan.slot[tok]! >= 0, tok % 32 < C);
});

test('C = min_capacity when capacity_factor is tiny', async (t) => {
  const { run } = await compare(t, ['moe.capacity_factor=0.01', 'moe.min_capacity=3']);
  t.is(run.plan.capacity, 3);
  t.true(Array.from(run.plan.counts).every((c) => c <= 3));
});

test('top_k = 2 (GShard): renormalised gates, second choices placed after all first choices', async (t) => {
  const { run } = await compare(t, ['moe.top_k=2', 'moe.capacity_factor=0.75']); // C = ⌊2 · 0.75 · S / E⌋: second choices overflow
  t.true(run.plan.dropped > 0);
  t.is(run.plan.topK, 2);
});

test('top_k = 3 of 8 experts with d_ff_expert 16 (fine-grained): gates renormalised over the three, C = ⌊3 · CF · S / E⌋', async (t) => {
  const { run } = await compare(t, ['moe.top_k=3', 'moe.n_experts=8', 'moe.d_ff_expert=16', 'moe.capacity_factor=0.5']);
  t.is(run.plan.topK, 3);
  t.is(run.plan.capacity, Math.floor((3 * 0.5 * 32) / 8));
  t.true(run.plan.dropped > 0);
});

test('drop_tokens false keeps every token', async (t) => {
  const { run } = await compare(t, ['moe.drop_tokens=false'], (_t, e) => (e === 1 ? 3 : 0));
  t.is(run.plan.dropped, 0);
});

test('scale_by_prob false: output is the expert output itself', async (t) => {
  await compare(t, ['moe.scale_by_prob=false']);
});

test('gelu experts match the reference', async (t) => {
  await compare(t, ['model.activation=gelu']);
});

test('n_experts = 1 with capacity_factor >= 1 is a dense FFN × 1', async (t) => {
  const { run, ref } = await compare(t, ['moe.n_experts=1', 'parallel.devices=1', 'moe.capacity_factor=1']);
  t.is(run.plan.dropped, 0);
  t.true(maxAbsDiff(run.y, ref.y) < 1e-5); // with one expert p = 1: y = FFN(x)
});
