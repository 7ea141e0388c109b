import type { Config } from '../core/config/defaults.js';
import { isSwitchBlock } from '../core/model/params.js';
import { expertFf } from '../core/model/trainable.js';

/**
 * Model FLOPs of one step, Megatron-LM's convention (megatron/training/training.py,
 * num_floating_point_operations): three times the forward (the backward counts twice), recompute
 * not counted, dropped tokens counted, routers and embeddings not counted; per layer forward
 *   attention  4·t·h·p·(h + h·g/n) + 2·Σ s²·h·p         (p = head_dim·n/h, g key/value heads, n heads; causal)
 *   dense MLP  4·t·h·F           MoE  4·t·h·F_e·k + 4·t·h·F_s     (× 3/2 with SwiGLU)
 *   logits     2·t·h·V
 * over t = global_batch · seq tokens.
 */
export function modelFlopsPerStep(config: Config, globalBatch: number, vocab: number): number {
  const m = config.model;
  const h = m.d_model;
  const n = m.n_heads;
  const g = m.n_kv_heads || n;
  const p = ((m.head_dim || h / n) * n) / h;
  const s = config.data.seq_len;
  const t = globalBatch * s;
  const swiglu = m.activation === 'swiglu' ? 3 / 2 : 1;
  let fwd = 2 * t * h * vocab;
  for (let l = 0; l < m.n_layers; l++) {
    fwd += 4 * t * h * p * (h + h * (g / n)) + 2 * globalBatch * s * s * h * p;
    fwd += isSwitchBlock(config, l)
      ? 4 * t * h * expertFf(config) * (config.moe.top_k + config.moe.shared_experts) * swiglu
      : 4 * t * h * m.d_ff * swiglu;
  }
  return 3 * fwd;
}
