import type { Config } from '../core/config/defaults.js';
import { blockParams, isSwitchBlock, outerParams } from '../core/model/params.js';
import type { Layout } from './layout.js';
import { paramBytes } from './param-bytes.js';

/** Device memory of the busiest GPU, GB (10⁹ bytes), by part. */
export interface MemoryUse {
  weights_gb: number;
  grads_gb: number;
  optimizer_gb: number;
  activations_gb: number;
  /** the all-to-all's send and receive buffers of one Switch layer (transient, the largest) */
  a2a_buffers_gb: number;
  /** the last stage's fp32 logits and their gradient (transient) */
  logits_gb: number;
  total_gb: number;
  /** parameters on that GPU: dense (its tp share) and experts (its ep·etp share) */
  dense_params: number;
  expert_params: number;
}

/** Parameters one GPU of pipeline stage s holds (before any data-parallel sharding). */
export function stageParams(config: Config, L: Layout, s: number): { dense: number; experts: number } {
  const outer = outerParams(config, L.vocab);
  let dense = (s === 0 ? outer.embedding : 0) + (s === L.pp - 1 ? outer.head : 0);
  let experts = 0;
  for (const l of L.stages[s]!) {
    const b = blockParams(config, l);
    dense += b.norms + b.attention + b.ffn;
    experts += b.experts;
  }
  return { dense: dense / L.tp, experts: experts / (L.ep * L.etp) };
}

/**
 * Activation bytes one GPU keeps per token of a micro-batch for one block's backward, Korthikanti et
 * al. 2022 ("Reducing Activation Recomputation in Large Transformer Models", §4) generalised, with
 * flash attention (no s² scores stored), sequence parallelism (everything ÷ tp), in bf16 bytes scaled
 * to the cluster's value size (dropout masks stay 1 byte an element):
 *   norms 4h; attention 2h input + 2(h + 2·kv) q, k, v + 2h output (+ h dropout mask);
 *   dense MLP 2h input + 2F and 2F (hidden before and after the activation; SwiGLU 4F and 2F) (+ h mask);
 *   MoE: per routed copy (k) 2h input + the expert's hidden (as the MLP's, F_e), kept on the GPU
 *   that computes it (rows come and go evenly on average), the shared experts as a dense MLP of F_s.
 * Full recompute keeps only the block's input (2h); selective recompute re-runs the attention core,
 * which flash attention never stores anyway, so it keeps the same as none.
 */
export function activationBytesPerToken(config: Config, L: Layout, l: number, valueBytes: number): number {
  const h = config.model.d_model;
  const s = valueBytes / 2; // the formulas are in bf16 bytes; the masks are not values
  if (config.plan.recompute === 'full') return (2 * h * s) / L.tp;
  const mask = config.model.dropout > 0 ? h : 0;
  const kv = (L.kvHeads * L.headDim);
  const q = L.heads * L.headDim;
  const hidden = (F: number) => (config.model.activation === 'swiglu' ? 6 * F : 4 * F);
  const attention = 2 * h + 2 * (q + 2 * kv) + 2 * q;
  let mlp: number;
  if (isSwitchBlock(config, l)) {
    const k = config.moe.top_k;
    const Fs = config.moe.shared_experts * L.dffExpert;
    mlp = k * (2 * h + hidden(L.dffExpert / L.etp)) + (Fs > 0 ? 2 * h + hidden(Fs) : 0);
  } else mlp = 2 * h + hidden(config.model.d_ff);
  return ((4 * h + attention + mlp) * s + 2 * mask) / L.tp;
}

export function memoryUse(config: Config, L: Layout, valueBytes: number, a2aRowsPerLayer: number): MemoryUse {
  const p = config.plan;
  const m = L.microBatches;
  // the first stage keeps the most micro-batches in flight: min(m, pp) under 1F1B, × (1 + (pp−1)/(pp·vpp)) interleaved
  const inFlight = Math.min(m, L.pp) * (L.vpp > 1 ? 1 + (L.pp - 1) / (L.pp * L.vpp) : 1);
  let worst: MemoryUse | undefined;
  for (let s = 0; s < L.pp; s++) {
    const { dense, experts } = stageParams(config, L, s);
    const full = p.shard === 'full';
    const sharded = p.shard !== 'none';
    const held = full ? dense / L.dp + experts / L.edp : dense + experts;
    const bytes = paramBytes(valueBytes);
    const weights = bytes.weight * held;
    const grads = bytes.grad * held;
    const optimizer = bytes.optimizer * (sharded ? dense / L.dp + experts / L.edp : dense + experts);
    const tokens = L.microBatch * L.seq;
    const perMicro = L.stages[s]!.reduce((a, l) => a + activationBytesPerToken(config, L, l, valueBytes), 0) * tokens;
    const activations = perMicro * (s === 0 ? inFlight : Math.max(1, inFlight - s));
    const a2a = 2 * a2aRowsPerLayer * config.model.d_model * valueBytes;
    const logits = s === L.pp - 1 ? (2 * 4 * tokens * L.vocab) / L.tp : 0;
    const total = weights + grads + optimizer + activations + a2a + logits;
    const use: MemoryUse = {
      weights_gb: weights / 1e9, grads_gb: grads / 1e9, optimizer_gb: optimizer / 1e9, activations_gb: activations / 1e9,
      a2a_buffers_gb: a2a / 1e9, logits_gb: logits / 1e9, total_gb: total / 1e9, dense_params: dense, expert_params: experts,
    };
    if (!worst || use.total_gb > worst.total_gb) worst = use;
  }
  return worst!;
}
