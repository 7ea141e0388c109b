import test from 'ava';
import { planRouting, type RoutingOptions } from '../src/core/router/plan.js';
import { layerStats, mergeLayerStats, type LayerStats } from '../src/runtime/coordinator/layer-stats.js';
import { mergeShardLayers } from '../src/runtime/spmd/merge.js';

// Two groups of S = 4 tokens, E = 4 experts, top-2, C = ⌊k · CF · S / E⌋ = ⌊2 · 1 · 4 / 4⌋ = 2, by position.
// Group 0 (rows = tokens):                  Group 1:
//   t0 [.5 .3 .1 .1]  e¹ = 0, e² = 1          t4 [.1 .6 .2 .1]  e¹ = 1, e² = 2
//   t1 [.4 .1 .3 .2]  e¹ = 0, e² = 2          t5 [.1 .5 .1 .3]  e¹ = 1, e² = 3
//   t2 [.6 .2 .1 .1]  e¹ = 0, e² = 1          t6 [.2 .1 .6 .1]  e¹ = 2, e² = 0
//   t3 [.1 .3 .2 .4]  e¹ = 3, e² = 1          t7 [.1 .2 .3 .4]  e¹ = 3, e² = 2
// Group 0, rank 1: t0→e0, t1→e0, t2→e0 full (dropped), t3→e3; rank 2: t0→e1, t1→e2, t2→e1, t3→e1 full.
//   kept [2 2 1 1] (6 of 8), first choices [3 0 0 1]
// Group 1, rank 1: t4→e1, t5→e1, t6→e2, t7→e3; rank 2: t4→e2, t5→e3, t6→e0, t7→e2 full.
//   kept [1 2 2 2] (7 of 8), first choices [0 2 1 1]
const G0 = [0.5, 0.3, 0.1, 0.1, 0.4, 0.1, 0.3, 0.2, 0.6, 0.2, 0.1, 0.1, 0.1, 0.3, 0.2, 0.4];
const G1 = [0.1, 0.6, 0.2, 0.1, 0.1, 0.5, 0.1, 0.3, 0.2, 0.1, 0.6, 0.1, 0.1, 0.2, 0.3, 0.4];
const opts: RoutingOptions = { groups: 1, topK: 2, capacityFactor: 1, minCapacity: 1, dropTokens: true, policy: 'position' };
const timing = { inflightMs: 0, computeMs: [0, 0] };

function stats(rows: number[], groups: number, groupOffset = 0): LayerStats {
  const probs = Float32Array.from(rows);
  return layerStats(planRouting(probs, 4, { ...opts, groups, groupOffset }), probs, timing);
}

test('load_max_over_mean counts every kept choice at top-2; load_max_over_mean_first the first choices before drops', (t) => {
  const s = stats(G0, 1);
  t.deepEqual(s.tokens_per_expert, [2, 2, 1, 1]);
  t.deepEqual(s.group_expert_counts, [[3, 0, 0, 1]]);
  t.is(s.drop_fraction, 2 / 8);
  t.is(s.load_max_over_mean, 2 / (6 / 4)); // busiest kept 2, mean 1.5
  t.is(s.load_max_over_mean_first, 3 / (4 / 4)); // busiest first choice 3, mean 1
});

test('the coordinator (both groups in one plan), micro-batches and spmd devices (a group each) agree', (t) => {
  const whole = stats([...G0, ...G1], 2);
  // kept [3 4 3 3]: 4 / (13 / 4); first choices [3 2 1 2]: 3 / (8 / 4)
  t.deepEqual(whole.tokens_per_expert, [3, 4, 3, 3]);
  t.is(whole.load_max_over_mean, 4 / (13 / 4));
  t.is(whole.load_max_over_mean_first, 3 / (8 / 4));
  const parts = [stats(G0, 1, 0), stats(G1, 1, 1)];
  const micro = mergeLayerStats(parts);
  const [spmd] = mergeShardLayers(parts.map((p) => [p]));
  for (const [what, m] of [['micro-batches', micro], ['spmd', spmd!]] as const) {
    t.deepEqual(m.tokens_per_expert, whole.tokens_per_expert, what);
    t.is(m.load_max_over_mean, whole.load_max_over_mean, what);
    t.is(m.load_max_over_mean_first, whole.load_max_over_mean_first, what);
  }
});

test('top-1 without drops: both figures are the first choices\' imbalance', (t) => {
  const probs = Float32Array.from(G0);
  const s = layerStats(planRouting(probs, 4, { ...opts, topK: 1, dropTokens: false }), probs, timing);
  t.deepEqual(s.tokens_per_expert, [3, 0, 0, 1]);
  t.is(s.load_max_over_mean, 3);
  t.is(s.load_max_over_mean_first, 3);
});
