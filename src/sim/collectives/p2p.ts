import type { Cluster } from '../cluster.js';
import { nicGbpsPerGpu } from './all-to-all.js';
import { wireUs } from './ring.js';

/**
 * One point-to-point send of `bytes` (pipeline parallelism's activations forward and gradients
 * backward, between neighbouring stages): one NCCL launch and one step, over NVLink when both GPUs
 * share a node, else through the sender's NIC.
 *   T = base + lat + bytes / B
 */
export function sendUs(c: Cluster, bytes: number, crossesNodes: boolean): number {
  if (bytes <= 0) return 0;
  const base = c.collective_latency_us ?? 0;
  return crossesNodes ? base + c.inter_node.latency_us + wireUs(
    bytes, nicGbpsPerGpu(c),
  ) : base + c.intra_node.latency_us + wireUs(
    bytes, c.intra_node.gbps,
  );
}
