import type { Config } from '../core/config/defaults.js';
import type { Cluster } from './cluster.js';
import type { Work } from './work-types.js';
import type { Layout } from './layout.js';

/**
 * Memory-bound kernels: what a transformer block launches beyond its GEMMs and fused attention. Each is
 * its bytes at an achieved fraction of HBM bandwidth plus a fixed cost per kernel:
 *   T = n · floor + streaming bytes / (B_HBM · e_stream) + gathered bytes / (B_HBM · e_gather)
 * The constants come from cluster.kernels (configs/clusters/*.yaml cite DeepSeek's H800 training trace);
 * without that section, bytes at peak bandwidth and no fixed cost (this machine's fitted model).
 */
export function memoryBoundUs(c: Cluster, w: Work): number {
  const k = c.kernels;
  const bw = c.gpu.hbm_gbps * 1e9;
  const stream = w.bytes / (bw * (k?.hbm_efficiency ?? 1));
  const gather = (w.gatherBytes ?? 0) / (bw * (k?.gather_efficiency ?? 1));
  return (stream + gather) * 1e6 + (w.memKernels ?? 0) * (k?.floor_us ?? 0);
}

/** Bytes and kernels of memory-bound work, forward, to add to a block's Work (and its gathers' backward bytes). */
export interface MemWork {
  bytes: number;
  gatherBytes: number;
  gatherBackwardBytes: number;
  memKernels: number;
}

const none: MemWork = { bytes: 0, gatherBytes: 0, gatherBackwardBytes: 0, memKernels: 0 };

export const addMem = (w: Work, m: MemWork): Work => ({
  ...w,
  bytes: w.bytes + m.bytes,
  gatherBytes: (w.gatherBytes ?? 0) + m.gatherBytes,
  gatherBackwardBytes: (w.gatherBackwardBytes ?? w.gatherBytes ?? 0) + m.gatherBackwardBytes,
  memKernels: (w.memKernels ?? 0) + m.memKernels,
});

/**
 * Rotary embeddings on this GPU's query and key heads for the micro-batch's T tokens: each value read and
 * written once, q and k a kernel each (Transformer Engine's fused RoPE).
 *   bytes = 2 · (heads + kv_heads) · head_dim / tp · T · b
 */
export function ropeWork(L: Layout, bytesPerValue: number): MemWork {
  const T = L.microBatch * L.seq;
  return { ...none, bytes: (2 * (L.heads + L.kvHeads) * L.headDim * T * bytesPerValue) / L.tp, memKernels: 2 };
}

/**
 * An MoE layer's routing kernels on the GPU's own tokens (t = micro_batch · seq / tp) of d values of b bytes:
 *   router: softmax over the E fp32 logits (read and write 8E bytes), top-k over them (read 4E, write k fp32
 *     weights and k int64 indices, 12k): t · (12E + 12k) bytes, two kernels (streaming; backward twice);
 *   permutation (fused, as Transformer Engine's and DeepSeek's): each token's row read once, its k copies
 *     written in expert order, (k + 1)·d·b; its backward sums the copies' gradients back, the same bytes;
 *   unpermutation: the k expert outputs read and summed with their weights into the row, (k + 1)·d·b; its
 *     backward reads the row's gradient and the k outputs (the weights' gradient) and writes k gradients,
 *     (2k + 1)·d·b.
 *   forward t·2(k + 1)·d·b, backward t·(3k + 2)·d·b of row gathers (gatherBytes), a kernel each.
 */
export function routingWork(config: Config, L: Layout, bytesPerValue: number): MemWork {
  const t = L.tokensPerGpu;
  const E = config.moe.n_experts;
  const k = config.moe.top_k;
  const row = config.model.d_model * bytesPerValue;
  return { bytes: t * (12 * E + 12 * k), gatherBytes: t * 2 * (k + 1) * row, gatherBackwardBytes: t * (3 * k + 2) * row, memKernels: 4 };
}

/**
 * With several local experts and ep > 1, the R rows a GPU receives arrive grouped by source GPU; they are
 * sorted into expert order after the dispatch and back before the combine (Megatron-Core's all-to-all
 * dispatcher, sort_chunks_by_idxs): twice R rows read and written, 4·R·d·b bytes of row gathers, two
 * kernels, and as much again backward (a permutation's gradient is the inverse permutation).
 */
export function sortChunksWork(config: Config, L: Layout, rows: number, bytesPerValue: number): MemWork {
  if (L.expertsPerGpu <= 1 || L.ep <= 1 || rows <= 0) return none;
  const bytes = 4 * rows * config.model.d_model * bytesPerValue;
  return { ...none, gatherBytes: bytes, gatherBackwardBytes: bytes, memKernels: 2 };
}

/** The framework's small kernels of an MoE layer beyond the named ones (cluster.kernels.moe_glue_*): each its floor. */
export function glueWork(c: Cluster, direction: 'forward' | 'backward'): Work {
  const n = c.kernels ? (direction === 'forward' ? c.kernels.moe_glue_forward : c.kernels.moe_glue_backward) : 0;
  return { kernels: [], attentionFlops: 0, attentionKernels: 0, bytes: 0, fixedUs: 0, memKernels: n };
}
