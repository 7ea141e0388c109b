import test from 'ava';
import { planRouting } from '../src/router/plan.js';

// One group of 4 tokens, 3 experts, top-2, C = ⌊1.5 · 4 / 3⌋ = 2. Probabilities, rows = tokens:
//   t0 [0.50 0.40 0.10]  e¹ = 0 (0.50), e² = 1 (0.40)
//   t1 [0.10 0.30 0.60]  e¹ = 2 (0.60), e² = 1 (0.30)
//   t2 [0.20 0.70 0.10]  e¹ = 1 (0.70), e² = 0 (0.20)
//   t3 [0.05 0.15 0.80]  e¹ = 2 (0.80), e² = 1 (0.15)
const probs = Float32Array.from([0.5, 0.4, 0.1, 0.1, 0.3, 0.6, 0.2, 0.7, 0.1, 0.05, 0.15, 0.8]);
const opts = { groups: 1, topK: 2, capacityFactor: 1.5, minCapacity: 1, dropTokens: true } as const;

test('batch-prioritised routing (V-MoE): both ranks follow the largest routing weight, worked by hand', (t) => {
  const plan = planRouting(probs, 3, { ...opts, policy: 'priority' });
  t.is(plan.capacity, 2);
  t.deepEqual(Array.from(plan.expert), [0, 1, 2, 1, 1, 0, 2, 1]);
  // order by max weight: t3 (0.80), t2 (0.70), t1 (0.60), t0 (0.50)
  // rank 1: t3→e2 slot 0, t2→e1 slot 0, t1→e2 slot 1, t0→e0 slot 0
  // rank 2, same order: t3→e1 slot 1, t2→e0 slot 1, t1→e1 full (dropped), t0→e1 full (dropped)
  t.deepEqual(Array.from(plan.slot), [0, -1, 1, -1, 0, 1, 0, 1]);
  t.deepEqual(Array.from(plan.counts), [2, 2, 2]);
  t.is(plan.dropped, 2);
});

test('position routing on the same case: both ranks in token order', (t) => {
  const plan = planRouting(probs, 3, { ...opts, policy: 'position' });
  // rank 1: t0→e0 0, t1→e2 0, t2→e1 0, t3→e2 1; rank 2: t0→e1 1, t1→e1 full, t2→e0 1, t3→e1 full
  t.deepEqual(Array.from(plan.slot), [0, 1, 0, -1, 0, 1, 1, -1]);
  t.is(plan.dropped, 2);
});

test('drop_tokens false: capacity is the busiest expert, clamped to the group however large min_capacity is', (t) => {
  const plan = planRouting(probs, 3, { ...opts, policy: 'position', dropTokens: false, minCapacity: 100 });
  t.is(plan.capacity, 4);
  t.is(plan.dropped, 0);
  const top1 = planRouting(probs, 3, { ...opts, topK: 1, policy: 'position', dropTokens: false, minCapacity: 1 });
  t.is(top1.capacity, 2); // expert 2 is t1's and t3's first choice
  t.is(top1.dropped, 0);
});
