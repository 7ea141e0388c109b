import type { Config } from '../core/config/defaults.js';
import { expertCapacity } from '../core/router/capacity.js';
import type { Layout } from './layout.js';
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
 * The rows a GPU sends each expert of its EP group: its micro-batch's T = micro_batch·seq/tp tokens,
 * k choices each, split over the experts as the recorded run's group (gpu mod G) split them (its
 * fractions: a recorded skew carries over to any batch), or evenly (plan.routing uniform, or a
 * config without a run). Capacity C = expertCapacity(T, E, k, CF, min_capacity), the router's own:
 *   padded    every expert gets C slots, over-capacity choices dropped (GShard, DeepSpeed, Switch)
 *   dropless  exactly the kept rows: all of them with moe.drop_tokens false (Megatron-Core's dropless
 *             MoE), min(routed, C) with it true (this simulator's own dispatch)
 */
export function gpuRows(config: Config, L: Layout, load: LayerLoad | undefined, gpu: number): GpuRows {
  const E = L.experts;
  const k = config.moe.top_k;
  const T = L.tokensPerGpu;
  const recorded = config.plan.routing === 'recorded' && load ? load.routed[gpu % load.routed.length]! : undefined;
  const total = recorded ? recorded.reduce((a, b) => a + b, 0) : 0;
  const routed = Array.from({ length: E }, (_, e) => (recorded && total > 0 ? (T * k * recorded[e]!) / total : (T * k) / E));
  const m = config.moe;
  const padded = config.plan.dispatch === 'padded';
  const C = padded || m.drop_tokens ? expertCapacity({ tokensPerGroup: T, experts: E, topK: k, capacityFactor: m.capacity_factor, minCapacity: m.min_capacity }) : Infinity;
  const kept = routed.map((n) => Math.min(n, C));
  return { sent: padded ? new Array<number>(E).fill(C) : kept, routed: T * k, dropped: routed.reduce((a, n, e) => a + n - kept[e]!, 0) };
}
