import type { Config } from '../core/config/defaults.js';
import { expertCapacity } from '../core/router/capacity.js';
import { epGroup, type Layout } from './layout.js';
import type { LayerLoad } from './workload.js';

/** One GPU's rows for each expert in one micro-batch of one Switch layer. */
export interface GpuRows {
  /** rows it sends each expert (padded dispatch: every slot) */
  sent: number[];
  /** token-choices routed, and those over capacity (dropped: they ride the residual) */
  routed: number;
  dropped: number;
}

/**
 * The token-choices a GPU routes to each expert: its micro-batch's T = micro_batch·seq/tp tokens, k
 * choices each, split over the experts as the recorded run's group (gpu mod G) split them (its
 * fractions: a recorded skew carries over to any batch), or evenly (plan.routing uniform, or a config
 * without a run).
 */
function routedRows(config: Config, L: Layout, load: LayerLoad | undefined, gpu: number): number[] {
  const E = L.experts;
  const choices = L.tokensPerGpu * config.moe.top_k;
  const recorded = config.plan.routing === 'recorded' && load ? load.routed[gpu % load.routed.length]! : undefined;
  const total = recorded ? recorded.reduce((a, b) => a + b, 0) : 0;
  return Array.from({ length: E }, (_, e) => (recorded && total > 0 ? (choices * recorded[e]!) / total : choices / E));
}

/**
 * The rows every GPU of a stage sends each expert of its EP group. With moe.drop_tokens true an expert
 * keeps C = expertCapacity(T, E, k, CF, min_capacity) per GPU, the router's own, the rest dropped;
 * with it false nothing is dropped, padded or not:
 *   padded    every expert gets C slots: C from the capacity factor when dropping (GShard, DeepSpeed,
 *             Switch); without dropping the busiest expert's rows over the EP group, as DeepSpeed's
 *             top1gating/top2gating size it with drop_tokens=False (deepspeed/moe/sharded_moe.py: the
 *             max of exp_counts, all-reduced with MAX over the expert-parallel group, at most T) and
 *             as this project's router does (src/core/router/plan.ts)
 *   dropless  exactly the kept rows: min(routed, C) when dropping, all of them when not
 *             (Megatron-Core's dropless MoE)
 */
export function layerRows(config: Config, L: Layout, load: LayerLoad | undefined, gpus: number): GpuRows[] {
  const m = config.moe;
  const T = L.tokensPerGpu;
  const padded = config.plan.dispatch === 'padded';
  // GPUs that route as the same recorded group (gpu mod G), or all of them under uniform routing: one row list
  const sources = config.plan.routing === 'recorded' && load ? load.routed.length : 1;
  const bySource: number[][] = [];
  const routed = Array.from({ length: gpus }, (_, i) => (bySource[i % sources] ??= routedRows(config, L, load, i)));
  const C = m.drop_tokens
    ? expertCapacity({ tokensPerGroup: T, experts: L.experts, topK: m.top_k, capacityFactor: m.capacity_factor, minCapacity: m.min_capacity })
    : Infinity;
  // whole slots: the busiest expert's rows rounded up (the 1e-9 forgives float error in the scaled counts)
  const busiest = (gpu: number) => Math.ceil(Math.max(...epGroup(L, gpu).map((j) => Math.max(...routed[j]!))) - 1e-9);
  // the same rows give the same result, unless padding to the busiest expert of the GPU's own EP group
  const alike = new Map<number[], GpuRows>();
  return routed.map((rows, i) => {
    const own = padded && !m.drop_tokens;
    const seen = own ? undefined : alike.get(rows);
    if (seen) return seen;
    const kept = rows.map((n) => Math.min(n, C));
    const slots = !padded ? 0 : m.drop_tokens ? C : Math.min(T, Math.max(m.min_capacity, busiest(i)));
    const out = {
      sent: padded ? new Array<number>(L.experts).fill(slots) : kept,
      routed: T * m.top_k,
      dropped: rows.reduce((a, n, e) => a + n - kept[e]!, 0),
    };
    if (!own) alike.set(rows, out);
    return out;
  });
}
