import type { Cluster } from '../cluster.js';
import type { CommGroup } from './group.js';
import { ringBusGbps, ringLatencyUs, wireUs } from './ring.js';

/**
 * All-reduce of a `bytes` buffer on every rank (nccl-tests' `size`), the faster of NCCL's two
 * algorithms for it, as NCCL's tuner picks (src/graph/tuning.cc):
 *   ring: 2(n−1) steps, 2(nodes−1) across nodes; each rank sends 2(n−1)/n of the buffer
 *     T = base + (2(n−1) − 2(nodes−1))·intraLat + 2(nodes−1)·interLat + 2(n−1)/n · bytes / busBw
 *   tree (a chain inside each node, a binary tree between nodes; reduce up and broadcast down):
 *     T = base + 2·((perNode−1)·intraLat + log₂(nodes)·interLat) + 2 · bytes / (0.92 · busBw)
 *     (tuning.cc: tree's bandwidth is 0.92 of the channels' and its algorithm bandwidth half of it)
 * The tree's log₂ latency wins for small buffers over many nodes, the ring's bandwidth for large ones.
 *   algbw = bytes / T,  busbw = algbw · 2(n−1)/n        (nccl-tests' conventions)
 */
export function allReduceUs(c: Cluster, g: CommGroup, bytes: number): number {
  const n = g.ranks;
  if (n <= 1 || bytes <= 0) return 0;
  const bw = ringBusGbps(c, g);
  const ring = ringLatencyUs(c, 2 * (n - 1), 2 * (g.nodes - 1)) + wireUs((2 * (n - 1) / n) * bytes, bw);
  if (g.nodes <= 1) return ring;
  const tree = (c.collective_latency_us ?? 0) + 2 * ((g.perNode - 1) * c.intra_node.latency_us + Math.log2(g.nodes) * c.inter_node.latency_us) + wireUs(
    2 * bytes, 0.92 * bw,
  );
  return Math.min(ring, tree);
}

/** nccl-tests' bus-bandwidth factor of an all-reduce over n ranks. */
export const allReduceBusFactor = (n: number) => (2 * (n - 1)) / n;
