import type { Config } from '../core/config/defaults.js';
import { blockParams, isSwitchBlock, outerParams } from '../core/model/params.js';
import type { Layout } from './layout.js';
import { paramBytes } from './param-bytes.js';
import { freedActivations } from './recompute.js';
import { attentionActivations, attentionParams, ffnHiddenBytes } from './shapes.js';

/** Device memory of the busiest GPU, GB (10⁹ bytes), by part. */
export interface MemoryUse {
  weights_gb: number;
  grads_gb: number;
  optimizer_gb: number;
  activations_gb: number;
  /** the all-to-all's send and receive buffers of one Switch layer (transient, the largest) */
  a2a_buffers_gb: number;
  /** the last stage's fp32 logits and their gradient (transient; once more per multi-token prediction layer) */
  logits_gb: number;
  total_gb: number;
  /** parameters on that GPU: dense (its tp share) and experts (its ep·etp share) */
  dense_params: number;
  expert_params: number;
}

/**
 * Parameters one GPU of pipeline rank s holds (before any data-parallel sharding): its blocks' norms, attention
 * (MLA's down-projections whole on every tp rank, the rest split: shapes.ts), dense FFNs, routers and shared experts
 * over tp, their routed experts over ep · etp; the embedding on the first rank, the final norm and output layer on
 * the last. Multi-token prediction (Megatron-Core's multi_token_prediction.py) adds to the last rank, per layer, its
 * block, a 2h → h projection and three norms, and a copy of the embedding it shares with the first rank.
 */
export function stageParams(config: Config, L: Layout, s: number): { dense: number; experts: number } {
  const outer = outerParams(config, L.vocab);
  const h = config.model.d_model;
  const last = s === L.pp - 1;
  const mtp = last ? L.mtpBlocks.length : 0;
  let split = (s === 0 || mtp > 0 ? outer.embedding : 0) + (last ? outer.head : 0) + mtp * (2 * h * h + 3 * 2 * h);
  let replicated = 0;
  let experts = 0;
  for (const l of L.stages[s]!) {
    const b = blockParams(config, l);
    const att = attentionParams(config, l);
    split += b.norms + att.split + b.ffn;
    replicated += att.replicated;
    experts += b.experts;
  }
  return { dense: split / L.tp + replicated, experts: experts / (L.ep * L.etp) };
}

/**
 * Activation bytes one GPU keeps per token of a micro-batch for one block's backward, Korthikanti et al. 2022
 * ("Reducing Activation Recomputation in Large Transformer Models", §4) generalised, with flash attention (no s²
 * scores stored), sequence parallelism (everything ÷ tp), in bf16 bytes scaled to the cluster's value size (dropout
 * masks stay 1 byte an element):
 *   norms 4h; attention (shapes.ts: MHA 2h input + 2(q + 2kv) + 2q output; MLA its latents and Q, K, V) (+ h mask);
 *   dense MLP 2h input + its hidden (ffnHiddenBytes: 4F, SwiGLU 6F) (+ h mask);
 *   MoE: per routed copy (k) 2h input + the expert's hidden (F_e / etp), kept on the GPU that computes it (rows come
 *   and go evenly on average), etp times over (the etp ranks all-gather their rows), the shared experts as a dense
 *   MLP of F_s;
 *   a multi-token prediction block (numbered from n_layers) also its two input norms' and its projection's inputs, 8h.
 * Full recompute keeps only the block's input (2h); selective recompute frees what its modules run again
 * (recompute.ts: freedActivations). Context parallelism is in the tokens (micro_batch · seq / cp a GPU).
 */
export function activationBytesPerToken(config: Config, L: Layout, l: number, valueBytes: number): number {
  const h = config.model.d_model;
  const s = valueBytes / 2; // the formulas are in bf16 bytes; the masks are not values
  if (config.plan.recompute === 'full') return (2 * h * s) / L.tp;
  const mask = config.model.dropout > 0 ? h : 0;
  const attention = attentionActivations(config, L).bytes;
  let mlp: number;
  if (isSwitchBlock(config, l)) {
    const k = config.moe.top_k;
    const Fs = config.moe.shared_experts * L.dffExpert;
    // the etp ranks gather each other's rows: etp × the copies, each with 1/etp of the expert's hidden size
    mlp = k * L.etp * (2 * h + ffnHiddenBytes(config, L.dffExpert / L.etp)) + (Fs > 0 ? 2 * h + ffnHiddenBytes(config, Fs) : 0);
  } else mlp = 2 * h + ffnHiddenBytes(config, config.model.d_ff);
  const mtp = l >= config.model.n_layers ? 8 * h : 0;
  return ((4 * h + attention + mlp + mtp - freedActivations(config, L, l)) * s + 2 * mask) / L.tp;
}

export function memoryUse(config: Config, L: Layout, valueBytes: number, a2aRowsPerLayer: number): MemoryUse {
  const p = config.plan;
  const m = L.microBatches;
  // the first stage keeps the most micro-batches in flight: min(m, pp) under 1F1B, × (1 + (pp−1)/(pp·vpp)) interleaved
  const inFlight = Math.min(m, L.pp) * (L.vpp > 1 ? 1 + (L.pp - 1) / (L.pp * L.vpp) : 1);
  const denseShards = L.groups.dp.ranks; // dense state shards over dp · cp (Megatron-Core's dp-cp group), experts' over edp
  let worst: MemoryUse | undefined;
  for (let s = 0; s < L.pp; s++) {
    const { dense, experts } = stageParams(config, L, s);
    const full = p.shard === 'full';
    const sharded = p.shard !== 'none';
    const held = full ? dense / denseShards + experts / L.edp : dense + experts;
    const bytes = paramBytes(valueBytes);
    const weights = bytes.weight * held;
    const grads = bytes.grad * held;
    const optimizer = bytes.optimizer * (sharded ? dense / denseShards + experts / L.edp : dense + experts);
    const tokens = L.microBatch * L.seq;
    const perMicro = L.stages[s]!.reduce((a, l) => a + activationBytesPerToken(config, L, l, valueBytes), 0) * tokens;
    const activations = perMicro * (s === 0 ? inFlight : Math.max(1, inFlight - s));
    const a2a = 2 * a2aRowsPerLayer * config.model.d_model * valueBytes;
    const logits = s === L.pp - 1 ? ((2 * 4 * tokens * L.vocab) / L.tp) * (1 + L.mtpBlocks.length) : 0;
    const total = weights + grads + optimizer + activations + a2a + logits;
    const use: MemoryUse = {
      weights_gb: weights / 1e9, grads_gb: grads / 1e9, optimizer_gb: optimizer / 1e9, activations_gb: activations / 1e9,
      a2a_buffers_gb: a2a / 1e9, logits_gb: logits / 1e9, total_gb: total / 1e9, dense_params: dense, expert_params: experts,
    };
    if (!worst || use.total_gb > worst.total_gb) worst = use;
  }
  return worst!;
}
