import { interpolate, type Cluster } from './cluster.js';

/**
 * Closed-form collective times on a cluster (alpha–beta per link level, with the cluster's efficiency
 * by message size). All times in µs, bytes per GPU.
 *   one transfer of b bytes over a link: α + b / (β · eff(b))
 */

/** bytes one GPU moves in an all-to-all, by link level, out and in, and the messages that carry them */
export interface A2aLoad {
  intraOut: number;
  intraIn: number;
  interOut: number;
  interIn: number;
}

const us = (bytes: number, gbps: number, eff: number) => (bytes / (gbps * 1e9 * eff)) * 1e6;

/** Moving `bytes` in `messages` messages over one link level (messages go out concurrently, one latency each in sequence of posting). */
export function transferUs(c: Cluster, level: 'intra_node' | 'inter_node', bytes: number, messages: number): number {
  if (bytes <= 0 || messages <= 0) return 0;
  const link = c[level];
  const eff = interpolate(c.message_efficiency as [number, number][], bytes / messages);
  return messages * link.latency_us + us(bytes, link.gbps, eff);
}

/**
 * Flat (pairwise) all-to-all, one GPU's time: it exchanges with its g−1 node peers over NVLink and with
 * the N−g others over its NIC at the same time; each direction of each link carries its bytes.
 *   T = max( (g−1)·α_intra + max(out, in)_intra / (β_intra·eff),  (N−g)·α_inter + max(out, in)_inter / (β_inter·eff) )
 */
export function flatA2aUs(c: Cluster, l: A2aLoad): number {
  const g = c.gpus_per_node;
  const N = c.nodes * g;
  return Math.max(transferUs(c, 'intra_node', Math.max(l.intraOut, l.intraIn), g - 1), transferUs(c, 'inter_node', Math.max(l.interOut, l.interIn), N - g));
}

/**
 * Hierarchical all-to-all (DeepSpeed-MoE's): first inside the node, each GPU hands its node peers the
 * rows bound for their local rank on any node; then between nodes, along each local rank's rail, one
 * aggregated message per other node. Fewer, larger messages across nodes, at the price of moving the
 * inter-node rows over NVLink once more. `phase1` is what one GPU moves in the first step, `phase2` in the second.
 *   T = (g−1)·α_intra + max(out, in)₁ / (β_intra·eff)  +  (n−1)·α_inter + max(out, in)₂ / (β_inter·eff)
 */
export function hierarchicalA2aUs(c: Cluster, phase1: { out: number; in: number }, phase2: { out: number; in: number }): number {
  const g = c.gpus_per_node;
  return transferUs(c, 'intra_node', Math.max(phase1.out, phase1.in), g - 1) + transferUs(c, 'inter_node', Math.max(phase2.out, phase2.in), c.nodes - 1);
}

/**
 * Ring all-reduce of `bytes` over N GPUs (the dense gradients): 2(N−1) steps of bytes/N each, at the
 * slowest link the ring crosses (the NIC once there is more than one node).
 *   T = 2(N−1)·α + 2·(N−1)/N · bytes / (β·eff(bytes/N))
 */
export function allReduceUs(c: Cluster, bytes: number): number {
  const N = c.nodes * c.gpus_per_node;
  if (N === 1 || bytes <= 0) return 0;
  const link = c.nodes > 1 ? c.inter_node : c.intra_node;
  const chunk = bytes / N;
  const eff = interpolate(c.message_efficiency as [number, number][], chunk);
  return 2 * (N - 1) * link.latency_us + us(2 * (N - 1) * chunk, link.gbps, eff);
}
