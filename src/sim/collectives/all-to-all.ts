import { nicsPerNode, type Cluster } from '../cluster.js';
import type { CommGroup } from './group.js';
import { wireUs } from './ring.js';

/** What one GPU moves in an all-to-all, by link level, and with how many peers at each. */
export interface A2aLoad {
  intraOut: number;
  intraIn: number;
  interOut: number;
  interIn: number;
  /** peers on its own node, and on other nodes */
  intraPeers: number;
  interPeers: number;
}

/**
 * A GPU's share of the network: its own rail. NCCL's all-to-all is point-to-point sends and receives;
 * each GPU's cross-node traffic leaves through its NIC (PXN moves it over NVLink to the GPU on the
 * destination's rail first), so one all-to-all cannot aggregate several NICs per GPU (nccl-tests
 * issue 267): with r NICs for g GPUs a node, r/g of a NIC each.
 */
export const nicGbpsPerGpu = (c: Cluster) => c.inter_node.gbps * Math.min(1, nicsPerNode(c) / c.gpus_per_node);

/**
 * Flat (pairwise) all-to-all, one GPU's time: one NCCL launch, a latency step per peer, then the
 * NVLink and network parts at once, each direction of each carrying its bytes.
 *   T = base + p_intra·intraLat + p_inter·interLat + max( max(out, in)_intra / B_NVLink, max(out, in)_inter / B_NIC )
 */
export function flatA2aUs(c: Cluster, l: A2aLoad): number {
  if (l.intraPeers + l.interPeers === 0) return 0;
  const latency = (c.collective_latency_us ?? 0) + l.intraPeers * c.intra_node.latency_us + l.interPeers * c.inter_node.latency_us;
  return latency + Math.max(
    wireUs(Math.max(l.intraOut, l.intraIn), c.intra_node.gbps),
    wireUs(Math.max(l.interOut, l.interIn), nicGbpsPerGpu(c)),
  );
}

/** What one GPU moves in each phase of a hierarchical all-to-all. */
export interface HierarchicalLoad {
  /** inside the node: the rows bound for each local rank, handed to that rank */
  phase1: { out: number; in: number; peers: number };
  /** along the GPU's rail: one aggregated message per other node */
  phase2: { out: number; in: number; peers: number };
}

/**
 * Hierarchical all-to-all (DeepSpeed-MoE's): first inside the node, each GPU hands its node peers the
 * rows bound for their local rank on any node; then between nodes along each rail, one message per
 * other node. Fewer, larger messages across nodes, at the price of moving the cross-node rows over
 * NVLink once more. Two NCCL launches.
 *   T = 2·base + p₁·intraLat + max(out, in)₁ / B_NVLink + p₂·interLat + max(out, in)₂ / B_NIC
 */
export function hierarchicalA2aUs(c: Cluster, l: HierarchicalLoad): number {
  const base = c.collective_latency_us ?? 0;
  const one = l.phase1.peers > 0 ? base + l.phase1.peers * c.intra_node.latency_us + wireUs(
    Math.max(l.phase1.out, l.phase1.in), c.intra_node.gbps,
  ) : 0;
  const two = l.phase2.peers > 0 ? base + l.phase2.peers * c.inter_node.latency_us + wireUs(
    Math.max(l.phase2.out, l.phase2.in), nicGbpsPerGpu(c),
  ) : 0;
  return one + two;
}

/**
 * nccl-tests' all-to-all: every rank sends `bytes` (its `size`), 1/n of it to each rank (itself
 * included), over a group of `perNode` GPUs on each of `nodes` nodes.
 *   algbw = bytes / T,  busbw = algbw · (n−1)/n
 */
export function uniformA2aUs(c: Cluster, g: CommGroup, bytes: number): number {
  const n = g.ranks;
  if (n <= 1 || bytes <= 0) return 0;
  const per = bytes / n;
  const intraPeers = g.perNode - 1;
  const interPeers = n - g.perNode;
  return flatA2aUs(c, {
    intraOut: per * intraPeers, intraIn: per * intraPeers, interOut: per * interPeers, interIn: per * interPeers,
    intraPeers, interPeers,
  });
}
