import type { Config } from '../core/config/defaults.js';
import { isSwitchBlock } from '../core/model/params.js';
import { expertFf } from '../core/model/trainable.js';
import { isMla, mlaShape } from './shapes.js';

/**
 * Model FLOPs of one step, Megatron-LM's convention (megatron/training/training.py,
 * num_floating_point_operations; research notes §5.4, §5.6): three times the forward (the backward counts
 * twice), recompute not counted, dropped tokens counted, routers and embeddings not counted; per layer forward
 *   attention  4·t·h·p·(h + h·g/n) + 2·Σ s²·h·p         (p = head_dim·n/h, g key/value heads, n heads; causal)
 *   MLA        2·t·[q + dc·(h + n·(dn + dv) + 1) + h·dr + n·dv·h] + Σ s²·n·(dn + dr + dv)
 *              with q = dq·(h + n·(dn + dr) + 1), or h·n·(dn + dr) without q_lora_rank (the + 1s: the latent norms)
 *   dense MLP  4·t·h·F           MoE  4·t·h·F_e·k + 4·t·h·F_s     (× 3/2 with SwiGLU)
 *   logits     2·t·h·V · (1 + D)
 * over t = global_batch · seq tokens; D = model.mtp_layers multi-token prediction layers, each one more layer (MoE
 * if the last layer is) and 2·t·(2h² + 3h) for its 2h → h projection and norms.
 */
export function modelFlopsPerStep(config: Config, globalBatch: number, vocab: number): number {
  const m = config.model;
  const h = m.d_model;
  const s = config.data.seq_len;
  const t = globalBatch * s;
  const swiglu = m.activation === 'swiglu' ? 3 / 2 : 1;
  const D = m.mtp_layers;
  const ffn = (moe: boolean) => (moe
    ? 4 * t * h * expertFf(config) * (config.moe.top_k + config.moe.shared_experts) * swiglu
    : 4 * t * h * m.d_ff * swiglu);
  let fwd = 2 * t * h * vocab * (1 + D);
  for (let l = 0; l < m.n_layers; l++) fwd += attentionFlops(config, globalBatch) + ffn(isSwitchBlock(config, l));
  fwd += D * (attentionFlops(config, globalBatch) + ffn(isSwitchBlock(config, m.n_layers - 1)) + 2 * t * (2 * h * h + 3 * h));
  return 3 * fwd;
}

/** One layer's attention forward FLOPs over a step's sequences, Megatron-LM's count (above). */
export function attentionFlops(config: Config, globalBatch: number): number {
  const m = config.model;
  const h = m.d_model;
  const n = m.n_heads;
  const s = config.data.seq_len;
  const t = globalBatch * s;
  if (isMla(config)) {
    const { dq, dc, dn, dr, dv } = mlaShape(config);
    const q = dq > 0 ? dq * (h + n * (dn + dr) + 1) : h * n * (dn + dr);
    return 2 * t * (q + dc * (h + n * (dn + dv) + 1) + h * dr + n * dv * h) + globalBatch * s * s * n * (dn + dr + dv);
  }
  const g = m.n_kv_heads || n;
  const p = ((m.head_dim || h / n) * n) / h;
  return 4 * t * h * p * (h + h * (g / n)) + 2 * globalBatch * s * s * h * p;
}
