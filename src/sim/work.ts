import type { Config } from '../core/config/defaults.js';
import { isSwitchBlock } from '../core/model/params.js';
import type { Gemm, Work } from './work-types.js';
import { addMem, ropeWork, routingWork, sortChunksWork } from './kernels.js';
import type { Layout } from './layout.js';
import { selectiveWork } from './recompute.js';
import { activationValues, attentionWork, ffnGemms } from './shapes.js';

/**
 * What one GPU computes per micro-batch, forward, piece by piece (the backward is derived from it:
 * backwardOf). Tensor parallelism splits heads and hidden sizes over tp; sequence parallelism splits
 * the norms, residual adds and the MoE layer's tokens over tp, so a GPU routes micro_batch·seq/tp
 * tokens. FLOPs follow the GEMM shapes; memory-bound traffic counts values read and written:
 *   per token and block: two layer norms (4d), two residual adds (6d), attention as one fused kernel
 *   (flash-style: q, k, v in, the output out; the scores never reach memory); an FFN's activation
 *   over its hidden size (read and written; SwiGLU reads two and writes one).
 */
export interface BlockWork {
  /** attention, norms, and the dense FFN or the router and shared experts: the same on every GPU */
  dense: Work;
  /** what selective recompute runs again (recompute.ts: plan.recompute_modules; the attention core by default) */
  attentionCore: Work;
  /** a Switch block */
  moe: boolean;
}

/** each GEMM its own kernel */
const each = (...gemms: Gemm[]) => gemms.filter((g) => g.m > 0).map((g) => [g]);

/**
 * With `kernels` (a cluster that gives kernel-level constants) the block also pays its rotary embeddings and, as
 * a Switch block, its routing kernels (kernels.ts); memKernels counts every memory-bound kernel either way:
 * two norms, two residual adds, an FFN's activation.
 */
export function blockWork(config: Config, L: Layout, l: number, bytesPerValue: number, kernels = false): BlockWork {
  const d = config.model.d_model;
  const { tp } = L;
  // tokens of the micro-batch: every tensor-parallel rank computes its share of heads for all of them
  const T = L.microBatch * L.seq;
  const Tsp = L.tokensPerGpu; // the sequence-parallel share
  // MHA or MLA, its GEMMs, flash attention (Megatron's causal count), over tp and cp (shapes.ts)
  const att = attentionWork(config, L);
  const core = att.coreFlops;
  let gemms = each(...att.gemms);
  let values = Tsp * 10 * d + att.values; // norms 4d, residual adds 6d (sequence-parallel); attention in and out
  let memKernels = 4;
  const moe = isSwitchBlock(config, l);
  if (!moe) {
    const f = ffnGemms(config, T, d, config.model.d_ff / tp);
    gemms = [...gemms, ...each(f.up, f.down)];
    values += (T * activationValues(config, config.model.d_ff)) / tp;
    memKernels += 1;
  } else {
    gemms = [...gemms, ...each({ m: Tsp, k: d, n: config.moe.n_experts })]; // the router, on the GPU's own tokens
    const shared = config.moe.shared_experts * L.dffExpert;
    if (shared > 0) {
      const f = ffnGemms(config, T, d, shared / tp);
      gemms = [...gemms, ...each(f.up, f.down)];
      values += (T * activationValues(config, shared)) / tp;
      memKernels += 1;
    }
  }
  let dense: Work = {
    kernels: gemms, attentionFlops: core, attentionKernels: 1, bytes: values * bytesPerValue, fixedUs: 0, memKernels,
  };
  if (kernels) dense = addMem(dense, ropeWork(L, bytesPerValue));
  if (kernels && moe) dense = addMem(dense, routingWork(config, L, bytesPerValue));
  return {
    dense,
    attentionCore: selectiveWork(config, L, l, bytesPerValue),
    moe,
  };
}

/**
 * A GPU's local experts on the rows routed to them (rows[e] per local expert), forward: one grouped
 * GEMM per projection, each expert's GEMM its own size (an expert with few rows fills few tiles).
 * Expert tensor parallelism (etp) splits each expert's hidden size.
 */
export function expertWork(config: Config, L: Layout, rows: number[], bytesPerValue: number, kernels = false): Work {
  const d = config.model.d_model;
  const h = L.dffExpert / L.etp;
  const live = rows.filter((m) => m > 0).map((m) => ffnGemms(config, m, d, h));
  const total = rows.reduce((a, b) => a + b, 0);
  // one grouped GEMM per projection
  const gemms = live.length > 0 ? [live.map((f) => f.up), live.map((f) => f.down)] : [];
  const w: Work = {
    kernels: gemms, attentionFlops: 0, attentionKernels: 0, bytes: total * activationValues(config, h) * bytesPerValue,
    fixedUs: 0, memKernels: live.length > 0 ? 1 : 0,
  };
  // with kernel-level constants, the rows' sort into expert order
  return kernels ? addMem(w, sortChunksWork(config, L, total, bytesPerValue)) : w;
}

/**
 * The last stage's LM head and loss: [T, d]·[d, V/tp], and the softmax over the vocabulary (log-softmax and
 * its gradient's inputs).
 */
export function headWork(config: Config, L: Layout, bytesPerValue: number): Work {
  const T = L.microBatch * L.seq;
  return {
    kernels: each({ m: T, k: config.model.d_model, n: L.vocab / L.tp }), attentionFlops: 0, attentionKernels: 0,
    bytes: ((4 * T * L.vocab) / L.tp) * bytesPerValue, fixedUs: 0, memKernels: 1,
  };
}

/**
 * The backward of forward work: each GEMM kernel [m, k]·[k, n] twice (the input's gradient
 * [m, n]·[n, k] and the weight's [k, m]·[m, n], added into the gradient buffer: Megatron's
 * gradient-accumulation fusion), fused attention 2.5× its forward FLOPs (five
 * matrix products to the forward's two: FlashAttention-2, Dao 2023, §3.1.2), elementwise traffic twice,
 * row gathers their own backward bytes (kernels.ts), each memory-bound kernel one gradient kernel.
 */
export function backwardOf(w: Work): Work {
  return {
    kernels: w.kernels.flatMap((k) => [
      k.map((g) => ({ m: g.m, k: g.n, n: g.k, count: g.count })),
      // into the gradient buffer, micro-batch by micro-batch
      k.map((g) => ({ m: g.k, k: g.m, n: g.n, count: g.count, accumulate: true })),
    ]),
    attentionFlops: 2.5 * w.attentionFlops,
    attentionKernels: w.attentionKernels,
    bytes: 2 * w.bytes,
    fixedUs: 0,
    gatherBytes: w.gatherBackwardBytes ?? w.gatherBytes ?? 0, // a gather's gradient moves the rows back (kernels.ts)
    memKernels: w.memKernels ?? 0, // one gradient kernel each
  };
}
