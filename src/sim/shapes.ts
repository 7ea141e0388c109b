import type { Config } from '../core/config/defaults.js';
import { blockParams } from '../core/model/params.js';
import type { Gemm } from './work-types.js';
import type { Layout } from './layout.js';

/**
 * A block's pieces on one GPU: its self-attention and its FFNs, their GEMM shapes, parameters and saved activations,
 * one place for work.ts (what runs), recompute.ts (what runs again) and memory.ts (what is kept).
 *
 * Self-attention: multi-head (grouped-query) attention, or DeepSeek's multi-head latent
 * attention (MLA: model.kv_lora_rank > 0). Shapes as Megatron-Core builds them (megatron/core/transformer/
 * multi_latent_attention.py; research notes §5.2–5.3), n heads, d_model h, with tensor parallelism tp and sequence
 * parallelism (a GPU's own tokens T/tp for what is replicated, all T tokens of the micro-batch for its n/tp heads):
 *   MHA  qkv h → (n + 2g)·hd / tp;  out n·hd/tp → h
 *   MLA  q_down h → dq and kv_down h → dc + dr, REPLICATED on every tp rank, each on its own T/tp tokens;
 *        q_up dq → n·(dn + dr)/tp and kv_up dc → n·(dn + dv)/tp, split by heads; out n·dv/tp → h
 *        (no q_lora_rank: one q_proj h → n·(dn + dr)/tp)
 * Flash attention forward, Megatron's causal count (half the scores masked; training.py num_floating_point_operations):
 *   per sequence, MHA 2·s²·n·hd, MLA s²·n·(dn + dr + dv); a GPU computes its n/tp heads for its s/cp queries.
 */
export interface AttentionWork {
  /** forward GEMMs of one micro-batch on this GPU */
  gemms: Gemm[];
  /** of them, MLA's up-projections (what recompute_modules mla_up_proj runs again); none for MHA */
  up: Gemm[];
  /** flash attention's forward FLOPs on this GPU */
  coreFlops: number;
  /** values read and written by memory-bound work: the core kernel's q, k, v in and out, MLA's two latent RMSNorms */
  values: number;
  /** K and V values per token of this GPU's heads: what context parallelism's ring passes on (context-parallel.ts) */
  kvPerToken: number;
}

/** MLA's sizes (all 0 for standard attention): dq (0: no query compression), dc, dn, dr, dv. */
export const mlaShape = (config: Config) => {
  const m = config.model;
  return { dq: m.q_lora_rank, dc: m.kv_lora_rank, dn: m.qk_nope_head_dim, dr: m.qk_rope_head_dim, dv: m.v_head_dim };
};
export const isMla = (config: Config) => config.model.kv_lora_rank > 0;

/** Values an FFN's activation reads and writes per row over its hidden size h: relu/gelu 2h, SwiGLU 3h (two in, one out). */
export const activationValues = (config: Config, h: number) => (config.model.activation === 'swiglu' ? 3 : 2) * h;

/** An FFN of hidden size h on m rows: up (SwiGLU's gate and up as one GEMM of 2h columns, as Megatron's fc1) and down. */
export function ffnGemms(config: Config, m: number, d: number, h: number): { up: Gemm; down: Gemm } {
  return { up: { m, k: d, n: config.model.activation === 'swiglu' ? 2 * h : h }, down: { m, k: h, n: d } };
}

/**
 * Activation bytes an FFN of hidden size F keeps per row for its backward, bf16 (Korthikanti et al. 2022, §4): its
 * hidden before and after the activation, 2F and 2F (SwiGLU: 4F for the gate and up, 2F after); its input apart.
 * Of them the activation's output (2F) is what recompute_modules moe_act frees.
 */
export const ffnHiddenBytes = (config: Config, F: number) => (config.model.activation === 'swiglu' ? 6 * F : 4 * F);

/** One block's attention on this GPU, forward (above). */
export function attentionWork(config: Config, L: Layout): AttentionWork {
  const d = config.model.d_model;
  const { tp, heads: n } = L;
  const T = L.microBatch * L.seq; // the micro-batch's tokens on this GPU (its context-parallel share)
  const Tsp = L.tokensPerGpu; // its sequence-parallel share
  const pairs = L.microBatch * L.seq * L.seqLen; // (query, key) pairs before the causal halving
  if (!isMla(config)) {
    const { kvHeads: g, headDim: hd } = L;
    return {
      gemms: [{ m: T, k: d, n: ((n + 2 * g) * hd) / tp }, { m: T, k: (n * hd) / tp, n: d }],
      up: [],
      coreFlops: (2 * pairs * n * hd) / tp,
      values: (T * (2 * n + 2 * g) * hd) / tp,
      kvPerToken: (2 * g * hd) / tp,
    };
  }
  const { dq, dc, dn, dr, dv } = mlaShape(config);
  const qUp: Gemm = dq > 0 ? { m: T, k: dq, n: (n * (dn + dr)) / tp } : { m: T, k: d, n: (n * (dn + dr)) / tp };
  const kvUp: Gemm = { m: T, k: dc, n: (n * (dn + dv)) / tp };
  const down: Gemm[] = [...(dq > 0 ? [{ m: Tsp, k: d, n: dq }] : []), { m: Tsp, k: d, n: dc + dr }];
  return {
    gemms: [...down, qUp, kvUp, { m: T, k: (n * dv) / tp, n: d }],
    up: dq > 0 ? [qUp, kvUp] : [kvUp],
    coreFlops: (pairs * n * (dn + dr + dv)) / tp,
    values: (T * n * (2 * (dn + dr) + 2 * dv)) / tp + Tsp * 2 * (dq + dc),
    kvPerToken: (n * (dn + dr + dv)) / tp,
  };
}

/**
 * One block's attention parameters: `split` over tp (by heads), `replicated` on every tp rank. MHA: as
 * src/core/model/params.ts counts them (q, k, v, output, with biases), all split. MLA, without biases (DeepSeek-V3
 * has none), the latent RMSNorms' gains with the down-projections:
 *   replicated = h·dq + dq + h·(dc + dr) + dc           split = dq·n·(dn + dr) + dc·n·(dn + dv) + n·dv·h
 * (no q_lora_rank: replicated h·(dc + dr) + dc, split h·n·(dn + dr) + dc·n·(dn + dv) + n·dv·h).
 * DeepSeek-V3 (h 7168, n 128, dq 1536, dc 512, dn 128, dr 64, dv 128): 187,107,328 a layer.
 */
export function attentionParams(config: Config, l: number): { replicated: number; split: number } {
  if (!isMla(config)) return { replicated: 0, split: blockParams(config, l).attention };
  const h = config.model.d_model;
  const n = config.model.n_heads;
  const { dq, dc, dn, dr, dv } = mlaShape(config);
  const replicated = (dq > 0 ? h * dq + dq : 0) + h * (dc + dr) + dc;
  const split = (dq > 0 ? dq : h) * n * (dn + dr) + dc * n * (dn + dv) + n * dv * h;
  return { replicated, split };
}

/**
 * Activation bytes one block's attention keeps per token for the backward, in bf16 (Korthikanti et al. 2022 §4,
 * flash attention storing no scores), before the ÷ tp of sequence and tensor parallelism:
 *   MHA  2h input + 2(n + 2g)·hd q, k, v + 2n·hd output
 *   MLA  2h input of the down-projections + 2dq and 2(dc + dr) the latents before their norms + 2dq and 2dc after
 *        (the up-projections' inputs) + 2·n·(2(dn + dr) + dv) Q, K, V + 2n·dv output
 * `upProj`: of it, what recompute_modules mla_up_proj frees (Q, K and V, rebuilt from the latents; research §5.5).
 */
export function attentionActivations(config: Config, L: Layout): { bytes: number; upProj: number } {
  const h = config.model.d_model;
  const n = L.heads;
  if (!isMla(config)) {
    const q = n * L.headDim;
    const kv = L.kvHeads * L.headDim;
    return { bytes: 2 * h + 2 * (q + 2 * kv) + 2 * q, upProj: 0 };
  }
  const { dq, dc, dn, dr, dv } = mlaShape(config);
  const upProj = 2 * n * (2 * (dn + dr) + dv);
  return { bytes: 2 * h + 2 * dq + 2 * (dc + dr) + 2 * dq + 2 * dc + upProj + 2 * n * dv, upProj };
}
