import type { Config } from '../core/config/defaults.js';
import type { Cluster } from './cluster.js';
import { sendUs } from './collectives/p2p.js';
import { computeUs } from './compute.js';
import type { Layout } from './layout.js';
import { recomputedModules } from './recompute.js';
import { attentionWork } from './shapes.js';

/** One block's context-parallel exchange, one micro-batch, on one GPU (µs). */
export interface CpExchange {
  /** one ring step's transfer, forward (a K/V block), and of all the block's steps what attention does not hide */
  send_us: number;
  exposed_us: number;
  /** the ring's transfers of the micro-batch, forward and backward (and the recompute): for the collectives table */
  sends: number;
  bytes: number;
}

/**
 * Context parallelism's K/V exchange, as Megatron-Core's p2p cp_comm_type runs it (TransformerConfig cp_comm_type
 * docstring; docs/user-guide/features/context_parallel.md; research notes §3): each of the cp GPUs of a sequence
 * holds its 2 chunks of it (s/cp tokens); attention passes the K/V blocks round a ring of cp, cp − 1 steps, and
 * each step's transfer overlaps the attention of the block it already holds. With A the GPU's attention core
 * forward (its s/cp queries against all s keys), a step computes A/cp, and a step's send X of
 *   bytes = micro_batch · s/cp · (K + V values of its heads a token) · b
 * (one launch and one step over NVLink, or the network when the cp group spans nodes: collectives/p2p.ts) costs
 *   forward   (cp − 1) · max(0, X − A/cp)
 *   backward  (cp − 1) · max(0, 2X − 2.5·A/cp)          (K/V on, and their gradients back; flash backward 2.5× A)
 * and the forward's again when attention is recomputed (full, or core_attn). Exposed only where a step's transfer
 * exceeds its block's compute.
 */
export function cpExchange(c: Cluster, config: Config, L: Layout, bytesPerValue: number): CpExchange {
  if (L.cp <= 1) return { send_us: 0, exposed_us: 0, sends: 0, bytes: 0 };
  const att = attentionWork(config, L);
  const A = computeUs(c, config, { kernels: [], attentionFlops: att.coreFlops, attentionKernels: 0, bytes: 0, fixedUs: 0 });
  const bytes = L.microBatch * L.seq * att.kvPerToken * bytesPerValue;
  const crosses = L.groups.cp.nodes > 1;
  const X = sendUs(c, bytes, crosses);
  const X2 = sendUs(c, 2 * bytes, crosses);
  const steps = L.cp - 1;
  const again = config.plan.recompute === 'full' || recomputedModules(config).has('core_attn');
  const forward = steps * Math.max(0, X - A / L.cp);
  const backward = steps * Math.max(0, X2 - (2.5 * A) / L.cp);
  return { send_us: X, exposed_us: forward * (again ? 2 : 1) + backward, sends: steps * (again ? 4 : 3), bytes };
}
