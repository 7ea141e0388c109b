import type { Cluster } from '../cluster.js';
import type { CommGroup } from './group.js';
import { ringBusGbps, ringLatencyUs, wireUs } from './ring.js';

/**
 * Ring all-gather and reduce-scatter of a `bytes` buffer (nccl-tests' `size`: the gathered whole, of
 * which each rank holds 1/n): n−1 steps, nodes−1 of them across nodes; each rank sends (n−1)/n of it.
 *   T = base + (n − nodes)·intraLat + (nodes−1)·interLat + (n−1)/n · bytes / busBw
 *   algbw = bytes / T,  busbw = algbw · (n−1)/n
 * The two cost the same; tensor and sequence parallelism, FSDP and the distributed optimizer use them.
 */
export function allGatherUs(c: Cluster, g: CommGroup, bytes: number): number {
  const n = g.ranks;
  if (n <= 1 || bytes <= 0) return 0;
  return ringLatencyUs(c, n - 1, g.nodes - 1) + wireUs(((n - 1) / n) * bytes, ringBusGbps(c, g));
}

export const reduceScatterUs = allGatherUs;

/** nccl-tests' bus-bandwidth factor of an all-gather or reduce-scatter (and of an all-to-all) over n ranks. */
export const gatherBusFactor = (n: number) => (n - 1) / n;
