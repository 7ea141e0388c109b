import type { RoutingPlan } from '../../core/router/plan.js';
import type { ExchangeTiming } from './switch-dispatch.js';
import { maxOf } from '../../core/util/extremes.js';
import { groupsSpanned } from '../../core/router/choose.js';

/** What one Switch layer did in one step, as written to metrics.jsonl. */
export interface LayerStats {
  /** tokens kept per expert, summed over groups */
  tokens_per_expert: number[];
  /** [G][E] tokens whose first choice is the expert, before dropping */
  group_expert_counts: number[][];
  /** fraction of token-choices dropped over capacity */
  drop_fraction: number;
  /** mean over tokens of the router distribution's entropy (nats) */
  router_entropy: number;
  /** busiest expert's kept token-choices (all k, after capacity drops: tokens_per_expert) over the mean */
  load_max_over_mean: number;
  /**
   * busiest expert's first-choice tokens before dropping (group_expert_counts summed) over the mean: the
   * router's demand
   */
  load_max_over_mean_first: number;
  capacity: number;
  /** per device: compute ms, forward + backward */
  device_compute_ms: number[];
  /** time the coordinator sat idle waiting on the devices for this layer, forward + backward */
  wait_ms: number;
  /** time the exchanges were in flight (requests posted → last answer), forward + backward; with
   * micro-batches this includes the coordinator's own work on the other micro-batch */
  inflight_ms: number;
  /** top-k ≥ 2: mean over tokens of how many expert groups (devices, or moe.route_groups) its k experts span */
  groups_per_token?: number;
  /** aux-free balancing: the per-expert routing bias this step routed with */
  expert_bias?: number[];
}

/** What layer statistics need beside the plan: how experts group (devices), and the aux-free bias. */
export interface StatsContext {
  expertGroups: number;
  bias?: Float32Array;
}

/**
 * Load imbalance of per-expert counts n_e: max_e n_e / (Σ_e n_e / E), 1 when perfectly balanced.
 * Every group keeps at least one token-choice (min_capacity ≥ 1), so the sum is never 0.
 */
export function maxOverMean(load: readonly number[]): number {
  const sum = load.reduce((a, b) => a + b, 0);
  return maxOf(load) / (sum / load.length);
}

/**
 * Mean over tokens of the entropy (nats) of each token's scores [N, E] normalised over the experts (softmax
 * scores already are; sigmoid ones not).
 */
function meanEntropy(probs: Float32Array, E: number): number {
  const N = probs.length / E;
  let entropy = 0;
  for (let t = 0; t < N; t++) {
    let sum = 0;
    for (let e = 0; e < E; e++) sum += probs[t * E + e]!;
    for (let e = 0; e < E; e++) {
      const p = probs[t * E + e]! / sum;
      if (p > 0) entropy -= p * Math.log(p);
    }
  }
  return entropy / N;
}

/**
 * One Switch layer's statistics from its plan and router scores `probs` (which must not change afterwards:
 * router_entropy reads them when first asked for).
 */
export function layerStats(plan: RoutingPlan, probs: Float32Array, timing: ExchangeTiming,
  sc?: StatsContext): LayerStats {
  const { groups: G, experts: E } = plan;
  const tokens = new Array<number>(E).fill(0);
  const routedTotal = new Array<number>(E).fill(0);
  const groupCounts: number[][] = [];
  for (let g = 0; g < G; g++) {
    groupCounts.push(Array.from(plan.routed.subarray(g * E, (g + 1) * E)));
    for (let e = 0; e < E; e++) {
      tokens[e]! += plan.counts[g * E + e]!;
      routedTotal[e]! += plan.routed[g * E + e]!;
    }
  }
  const spans = sc && plan.topK > 1 ? groupsSpanned(plan.expert, plan.topK, E, sc.expertGroups) : undefined;
  return {
    ...(spans ? { groups_per_token: spans.reduce((a, b) => a + b, 0) / spans.length } : {}),
    ...(sc?.bias ? { expert_bias: Array.from(sc.bias) } : {}),
    tokens_per_expert: tokens,
    group_expert_counts: groupCounts,
    drop_fraction: plan.dropped / plan.slot.length,
    // computed when first read (a step's statistics are written every log_every steps), then a plain value
    get router_entropy(): number {
      const value = meanEntropy(probs, E);
      Object.defineProperty(this, 'router_entropy', { value, enumerable: true, writable: true, configurable: true });
      return value;
    },
    load_max_over_mean: maxOverMean(tokens),
    load_max_over_mean_first: maxOverMean(routedTotal),
    capacity: plan.capacity,
    device_compute_ms: [...timing.computeMs],
    wait_ms: 0, // the engine adds the idle time it measures
    inflight_ms: timing.inflightMs,
  };
}

export function addBackwardTiming(s: LayerStats, timing: ExchangeTiming): void {
  s.inflight_ms += timing.inflightMs;
  timing.computeMs.forEach((ms, i) => (s.device_compute_ms[i]! += ms));
}

/** One layer's statistics over the micro-batches of a step (they hold disjoint groups). */
export function mergeLayerStats(parts: LayerStats[]): LayerStats {
  if (parts.length === 1) return parts[0]!;
  const groups = parts.flatMap((p) => p.group_expert_counts);
  const E = groups[0]!.length;
  const routed = Array.from({ length: E }, (_, e) => groups.reduce((a, g) => a + g[e]!, 0));
  const kept = Array.from({ length: E }, (_, e) => parts.reduce((a, p) => a + p.tokens_per_expert[e]!, 0));
  const mean = (f: (p: LayerStats) => number) => parts.reduce((a, p) => a + f(p), 0) / parts.length;
  return {
    tokens_per_expert: kept,
    group_expert_counts: groups,
    drop_fraction: mean((p) => p.drop_fraction),
    router_entropy: mean((p) => p.router_entropy),
    load_max_over_mean: maxOverMean(kept),
    load_max_over_mean_first: maxOverMean(routed),
    capacity: parts[0]!.capacity,
    device_compute_ms: parts[0]!.device_compute_ms.map((_, i) => parts.reduce((a, p) => a + p.device_compute_ms[i]!,
      0)),
    wait_ms: parts.reduce((a, p) => a + p.wait_ms, 0),
    inflight_ms: parts.reduce((a, p) => a + p.inflight_ms, 0),
    ...(parts[0]!.groups_per_token !== undefined ? { groups_per_token: mean((p) => p.groups_per_token!) } : {}),
    ...(parts[0]!.expert_bias ? { expert_bias: parts[0]!.expert_bias } : {}),
  };
}
