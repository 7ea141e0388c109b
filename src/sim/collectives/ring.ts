import { nicsPerNode, type Cluster } from '../cluster.js';
import type { CommGroup } from './group.js';

/**
 * NCCL's cost model for its ring algorithm (Simple protocol), as src/graph/tuning.cc computes it:
 *   latency = base + (steps − inter)·intraLat + inter·interLat      one latency per algorithm step
 *   time    = latency + bytes on the wire per rank / busBw            busBw: per GPU, per direction
 * with base = cluster.collective_latency_us, intraLat / interLat = the cluster's latency per step over
 * NVLink / the network, and `inter` the steps that cross nodes. Bandwidth is per channel: NCCL runs a
 * ring per channel and spreads the channels over every NIC of a node (one rail each), so a group with
 * `perNode` of a node's g GPUs gets perNode/g of its NICs:
 *   busBw = min(NVLink busBw, perNode/g · NICs per node · NIC bandwidth)   (NVLink alone inside one node)
 * No curve by message size on top: the small-message drop of measured bus bandwidth is this latency.
 */
export function ringBusGbps(c: Cluster, g: CommGroup): number {
  if (g.nodes <= 1) return c.intra_node.gbps;
  const nics = (g.perNode / c.gpus_per_node) * nicsPerNode(c);
  return Math.min(c.intra_node.gbps, nics * c.inter_node.gbps);
}

/** µs of `steps` ring steps, `interSteps` of them across nodes, after NCCL's base latency. */
export function ringLatencyUs(c: Cluster, steps: number, interSteps: number): number {
  return (c.collective_latency_us ?? 0) + (steps - interSteps) * c.intra_node.latency_us + interSteps * c.inter_node.latency_us;
}

/** µs to move `bytes` (per rank, on the wire) at `gbps`. */
export const wireUs = (bytes: number, gbps: number) => (bytes / (gbps * 1e9)) * 1e6;
