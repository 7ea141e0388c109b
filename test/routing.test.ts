import test from 'ava';
import { resolveConfig } from '../src/core/config/load.js';
import { parseForceRouting } from '../src/core/config/force-routing.js';
import { expertCapacity } from '../src/core/router/capacity.js'; // shim
import { planRouting } from '../src/core/router/plan.js';
import { chooseExperts } from '../src/core/router/choose.js';
import { randomArray } from './helpers.js';
import { rngFor } from '../src/core/util/rng.js';

// One group of 4 tokens, 3 experts, top-2, C = ⌊k · CF · S / E⌋ = ⌊2 · 0.75 · 4 / 3⌋ = 2. Probabilities, rows = tokens:
//   t0 [0.50 0.40 0.10]  e¹ = 0 (0.50), e² = 1 (0.40)
//   t1 [0.10 0.30 0.60]  e¹ = 2 (0.60), e² = 1 (0.30)
//   t2 [0.20 0.70 0.10]  e¹ = 1 (0.70), e² = 0 (0.20)
//   t3 [0.05 0.15 0.80]  e¹ = 2 (0.80), e² = 1 (0.15)
const probs = Float32Array.from([0.5, 0.4, 0.1, 0.1, 0.3, 0.6, 0.2, 0.7, 0.1, 0.05, 0.15, 0.8]);
const opts = { groups: 1, topK: 2, capacityFactor: 0.75, minCapacity: 1, dropTokens: true } as const;

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

test('capacity follows top-k (GShard, DeepSpeed top2gating): a top-2 case at capacity factor 0.5, worked by hand', (t) => {
  // one group of S = 4 tokens, E = 2 experts, top-2: C = ⌊2 · 0.5 · 4 / 2⌋ = 2 (the top-1 formula would give 1)
  //   t0 [0.9 0.1] e¹ 0   t1 [0.2 0.8] e¹ 1   t2 [0.7 0.3] e¹ 0   t3 [0.6 0.4] e¹ 0; every second choice is the other expert
  const p2 = Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4]);
  const plan = planRouting(p2, 2, { groups: 1, topK: 2, capacityFactor: 0.5, minCapacity: 1, dropTokens: true, policy: 'position' });
  t.is(plan.capacity, 2);
  // rank 1 in token order: t0→e0 slot 0, t1→e1 slot 0, t2→e0 slot 1, t3→e0 full; rank 2: t0→e1 slot 1, then both experts are full
  t.deepEqual(Array.from(plan.slot), [0, 1, 0, -1, 1, -1, -1, -1]);
  t.deepEqual(Array.from(plan.counts), [2, 2]);
  t.is(plan.dropped, 4);
  t.is(expertCapacity({ tokensPerGroup: 4, experts: 2, topK: 1, capacityFactor: 0.5, minCapacity: 1 }), 1, 'top-1 at the same factor: half the slots');
  t.is(expertCapacity({ tokensPerGroup: 4, experts: 2, topK: 2, capacityFactor: 4, minCapacity: 1 }), 4, 'never more than S');
  t.is(expertCapacity({ tokensPerGroup: 64, experts: 8, topK: 2, capacityFactor: 0.01, minCapacity: 4 }), 4, 'never less than min_capacity');
});

test('drop_tokens false over 64 groups × 4,096 experts: no stack overflow (no spread over user-sized arrays)', (t) => {
  const G = 64;
  const Ex = 4096;
  const p = new Float32Array(G * Ex).fill(1 / Ex);
  const plan = planRouting(p, Ex, { groups: G, topK: 1, capacityFactor: 1, minCapacity: 1, dropTokens: false, policy: 'position' });
  t.is(plan.capacity, 1);
  t.is(plan.dropped, 0);
});

// forced routing: the choice is forced, the probabilities (gates) stay the router's
const N = 64;
const E = 4;
const routerProbs = Float32Array.from({ length: N * E }, (_, i) => [0.7, 0.1, 0.1, 0.1][(i + Math.floor(i / E)) % E]!);
const forced = (force: string, extra: Partial<Parameters<typeof planRouting>[2]> = {}) => {
  const f = parseForceRouting(force, E);
  if (typeof f === 'string') throw new Error(f);
  return planRouting(routerProbs, E, { groups: 2, topK: 1, capacityFactor: 1, minCapacity: 1, dropTokens: true, policy: 'position', force: f,
    rngForForce: (g) => rngFor(7, 'force', 1, 0, g), ...extra });
};
const load = (plan: ReturnType<typeof planRouting>) => {
  const routed = Array.from({ length: E }, (_, e) => plan.routed[e]! + plan.routed[E + e]!);
  return Math.max(...routed) / (N / E);
};

test('force_routing uniform: perfectly balanced, nothing dropped at capacity factor 1, gates stay the router probabilities', (t) => {
  const plan = forced('uniform');
  t.is(load(plan), 1);
  t.is(plan.dropped, 0);
  t.is(plan.capacity, 8);
  for (let i = 0; i < N; i++) {
    t.is(plan.expert[i], (i % 32) % E);
    t.is(plan.prob[i], routerProbs[i * E + plan.expert[i]!]);
  }
});

test('force_routing uniform with top-2 at capacity factor 1.0 drops nothing (C = 2·S/E); top-1 at 1.0 neither', (t) => {
  const two = forced('uniform', { topK: 2 });
  t.is(two.capacity, 16);
  t.is(two.dropped, 0);
  t.deepEqual(Array.from(two.counts), new Array(2 * E).fill(16));
  const one = forced('uniform');
  t.is(one.capacity, 8);
  t.is(one.dropped, 0);
});

test('force_routing one-hot:K: everything to K, all but C per group dropped', (t) => {
  const plan = forced('one-hot:2');
  t.true(Array.from(plan.expert).every((e) => e === 2));
  t.deepEqual(Array.from(plan.counts), [0, 0, 8, 0, 0, 0, 8, 0]);
  t.is(plan.dropped, N - 16);
  t.is(load(plan), E);
  const top2 = forced('one-hot:2', { topK: 2, capacityFactor: 2 });
  for (let tok = 0; tok < N; tok++) t.not(top2.expert[tok * 2 + 1], 2, 'the second choice is another expert');
});

test('force_routing zipf:S is seeded and repeatable, and the popular experts come first', (t) => {
  const a = forced('zipf:1.2');
  const b = forced('zipf:1.2');
  t.deepEqual(Array.from(a.expert), Array.from(b.expert));
  const c = forced('zipf:1.2', { rngForForce: (g) => rngFor(8, 'force', 1, 0, g) });
  t.notDeepEqual(Array.from(a.expert), Array.from(c.expert));
  const big = planRouting(new Float32Array(4096 * E).fill(0.25), E, { groups: 1, topK: 1, capacityFactor: 1, minCapacity: 1, dropTokens: true,
    policy: 'position', force: { kind: 'zipf', s: 1.2 }, rngForForce: (g) => rngFor(7, 'force', 1, 0, g) });
  const share = Array.from(big.routed, (n) => n / 4096);
  const expected = [1, 2, 3, 4].map((r) => r ** -1.2);
  const total = expected.reduce((x, y) => x + y, 0);
  share.forEach((s, e) => t.true(Math.abs(s - expected[e]! / total) < 0.03, `expert ${e}: ${s} vs ${expected[e]! / total}`));
});

test('force_routing values are validated', (t) => {
  t.is(parseForceRouting('one-hot:4', 4), 'must name an expert below moe.n_experts (4) in one-hot:K');
  t.regex(parseForceRouting('zipf', 4) as string, /^must be learned, uniform, zipf:S/);
  t.throws(() => resolveConfig({ sets: ['moe.force_routing=zipf:x'] }), { message: /^config error: moe\.force_routing must be learned, uniform, zipf:S .* \(got "zipf:x"\)$/ });
});

test('top-1 without bias or groups (argmax fast path) chooses as the general path: ties to the lower index', (t) => {
  const E = 5;
  const scores = randomArray(400 * E, 11).map((x) => Math.round(Math.abs(x) * 4) / 4); // many ties
  scores.set([0.5, 0.5, 0.5, 0.5, 0.5, -0, 0, 0, 0, 0, NaN, 0.2, 0.3, 0.3, 0.1], 0);
  // a zero bias takes the general path
  const general = chooseExperts(scores, E, { topK: 1, bias: new Float32Array(E) });
  t.deepEqual(Array.from(chooseExperts(scores, E, { topK: 1 })), Array.from(general));
  t.deepEqual(Array.from(general.subarray(0, 3)), [0, 0, 0]);
});
