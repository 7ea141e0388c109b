import { mergeLayerStats, type LayerStats } from '../coordinator/layer-stats.js';
import { maxOf } from '../../core/util/extremes.js';

/**
 * One step's Switch-layer statistics from every spmd device (each routed its own group): counts add
 * up, each device reported its own compute at its own index, and wait_ms (time at the exchange's
 * barriers, lost to the slowest device) and inflight_ms are the mean over devices.
 */
export function mergeShardLayers(perDevice: LayerStats[][]): LayerStats[] {
  const D = perDevice.length;
  return perDevice[0]!.map((_, l) => {
    const parts = perDevice.map((layers) => layers[l]!);
    const merged = mergeLayerStats(parts);
    if (D === 1) return merged;
    return { ...merged, capacity: maxOf(parts.map((p) => p.capacity)), wait_ms: merged.wait_ms / D,
      inflight_ms: merged.inflight_ms / D };
  });
}
