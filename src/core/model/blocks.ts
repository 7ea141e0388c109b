import tf from '../util/tfjs.cjs';
import type { Config } from '../config/defaults.js';
import { causalAttention } from './attention.js';
import { activation, dropout, layerNorm, linear } from './layers.js';
import { scaleShift } from './ops/scale-shift.js';
import { trainedActivation } from './trainable.js';
import { PROFILE } from '../instrument/recorder.js';
import { useFused } from './fused/io.js';
import { fusedLayerNorm } from './fused/layer-norm.js';
import { fusedLinear } from './fused/linear.js';
import { fusedFfn } from './fused/ffn.js';
import { fusedEmbed } from './fused/embed.js';
import { fusedLmLoss } from './fused/lm-loss.js';
import { fusedAttention } from './fused/attention.js';

/** Parameters by name, as tensors, for one forward pass. */
export type Weights = Map<string, tf.Tensor>;

/** Per-step state of a (micro-)batch: shared by its stages and their backward passes. */
export interface BlockContext {
  config: Config;
  batch: number;
  train: boolean;
  /** dropout mask for a named site (undefined: no dropout) */
  mask(site: string, shape: [number, number]): tf.Tensor | undefined;
}

const W = (w: Weights, name: string): tf.Tensor => {
  const t = w.get(name);
  if (!t) throw new Error(`missing parameter ${name}`);
  return t;
};

/** h₀ = wte[x] + wpe[position]  → [B·T, d] */
export function embed(tokens: tf.Tensor1D, w: Weights, ctx: BlockContext): tf.Tensor2D {
  PROFILE?.begin('embed');
  if (useFused(ctx.config)) {
    const h = fusedEmbed(
      tokens, W(w, 'wte'), W(w, 'wpe'), ctx.batch, ctx.mask('embed', [tokens.shape[0], W(w, 'wte').shape[1]!]),
    );
    PROFILE?.end();
    return h;
  }
  const wte = W(w, 'wte');
  // one-hot gather: fast on wasm, exact gradient
  const tok = tf.matMul(tf.oneHot(tokens, wte.shape[0]!).toFloat(), wte as tf.Tensor2D);
  const T = tokens.shape[0] / ctx.batch;
  const d = wte.shape[1] as number;
  const wpe = W(w, 'wpe');
  const pos = (T === wpe.shape[0] ? wpe : tf.slice(wpe, [0, 0], [T, -1])).reshape([T * d]);
  // each sequence gets the same position rows: add wpe as a bias over [B, T·d]
  const h = scaleShift(
    tok.reshape([ctx.batch, T * d]) as tf.Tensor2D, undefined, pos,
  ).reshape([ctx.batch * T, d]) as tf.Tensor2D;
  const out = dropout(h, ctx.mask('embed', h.shape)) as tf.Tensor2D;
  PROFILE?.end();
  return out;
}

/** h + Attn(LN₁(h)): causal multi-head self-attention, pre-LN. */
export function attentionBlock(h: tf.Tensor2D, l: number, w: Weights, ctx: BlockContext): tf.Tensor2D {
  const p = `h.${l}`;
  const { n_heads } = ctx.config.model;
  const fused = useFused(ctx.config);
  PROFILE?.begin('ln1', 'compute', l);
  const x = (fused ? fusedLayerNorm : layerNorm)(h, W(w, `${p}.ln1.g`), W(w, `${p}.ln1.b`));
  PROFILE?.end();
  PROFILE?.begin('attention', 'compute', l);
  const lin = fused ? (v: tf.Tensor2D, m: tf.Tensor, b: tf.Tensor) => fusedLinear(v, m, { bias: b }) : linear;
  const qkv = lin(x, W(w, `${p}.attn.w_qkv`), W(w, `${p}.attn.b_qkv`)); // [B·T, 3d]: q | k | v, each [B·T, H·hd]
  const shape = { batch: ctx.batch, seqLen: h.shape[0] / ctx.batch, heads: n_heads };
  const a = (fused ? fusedAttention : causalAttention)(qkv, shape); // [B·T, d]
  const mask = ctx.mask(`${p}.attn`, h.shape);
  const [wo, bo] = [W(w, `${p}.attn.w_o`), W(w, `${p}.attn.b_o`)];
  // y = h + dropout(a·W_o + b_o)
  const y = fused ? fusedLinear(a, wo, {
    bias: bo, residual: h, mask,
  }) : (h.add(dropout(linear(a, wo, bo), mask)) as tf.Tensor2D);
  PROFILE?.end();
  return y;
}

/** LN₂(h): the FFN's (or Switch layer's) input. */
export function ffnInput(h: tf.Tensor2D, l: number, w: Weights, fused = false): tf.Tensor2D {
  PROFILE?.begin('ln2', 'compute', l);
  const u = (fused ? fusedLayerNorm : layerNorm)(h, W(w, `h.${l}.ln2.g`), W(w, `h.${l}.ln2.b`));
  PROFILE?.end();
  return u;
}

/** h + FFN(LN₂(h)) for a dense (non-Switch) block. */
export function denseFfnBlock(h: tf.Tensor2D, l: number, w: Weights, ctx: BlockContext): tf.Tensor2D {
  const p = `h.${l}.ffn`;
  const fused = useFused(ctx.config);
  const x = ffnInput(h, l, w, fused);
  PROFILE?.begin('dense_ffn', 'compute', l);
  const mask = ctx.mask(`${p}`, h.shape);
  const act = trainedActivation(ctx.config);
  const fw = { w1: W(w, `${p}.w1`), b1: W(w, `${p}.b1`), w2: W(w, `${p}.w2`), b2: W(w, `${p}.b2`) };
  let y: tf.Tensor2D;
  if (fused) y = fusedFfn(x, fw, act, h, mask);
  else {
    const a = activation(act, linear(x, fw.w1, fw.b1)) as tf.Tensor2D;
    y = h.add(dropout(linear(a, fw.w2, fw.b2), mask)) as tf.Tensor2D;
  }
  PROFILE?.end();
  return y;
}

/**
 * Σ_s FFN_s(u) over the Switch block's shared experts (DeepSeekMoE §3.2): every token passes through
 * each, unweighted, beside its routed experts. [N, d] → [N, d]
 */
export function sharedExperts(u: tf.Tensor2D, l: number, w: Weights, ctx: BlockContext): tf.Tensor2D {
  PROFILE?.begin('shared_experts', 'compute', l);
  let y: tf.Tensor2D | undefined;
  const act = trainedActivation(ctx.config);
  for (let e = 0; e < ctx.config.moe.shared_experts; e++) {
    const p = `h.${l}.shared.${e}`;
    if (useFused(ctx.config)) {
      y = fusedFfn(u, { w1: W(w, `${p}.w1`), b1: W(w, `${p}.b1`), w2: W(w, `${p}.w2`), b2: W(w, `${p}.b2`) }, act, y);
      continue;
    }
    const a = activation(act, linear(u, W(w, `${p}.w1`), W(w, `${p}.b1`))) as tf.Tensor2D;
    const o = linear(a, W(w, `${p}.w2`), W(w, `${p}.b2`));
    y = y ? (y.add(o) as tf.Tensor2D) : o;
  }
  PROFILE?.end();
  return y!;
}

/** Router logits z = (x ⊙ jitter)·W_r in float32 (selective precision, paper §2.4). → [B·T, E] */
export function routerLogits(
  x: tf.Tensor2D, l: number, w: Weights, jitter: tf.Tensor | undefined, fused = false,
): tf.Tensor2D {
  PROFILE?.begin('router_logits', 'compute', l);
  const h = (jitter ? x.mul(jitter) : x) as tf.Tensor2D;
  const z = fused ? fusedLinear(h, W(w, `h.${l}.router.w`)) : (tf.matMul(
    h, W(w, `h.${l}.router.w`) as tf.Tensor2D,
  ) as tf.Tensor2D);
  PROFILE?.end();
  return z;
}

/** Mean cross-entropy of the LM head's next-token prediction. */
export function lmLoss(h: tf.Tensor2D, targets: tf.Tensor1D, w: Weights, fused = false): tf.Scalar {
  PROFILE?.begin('ln_f');
  const x = (fused ? fusedLayerNorm : layerNorm)(h, W(w, 'ln_f.g'), W(w, 'ln_f.b'));
  PROFILE?.end();
  PROFILE?.begin('loss');
  if (fused) {
    const ce = fusedLmLoss(x, W(w, 'lm_head'), targets);
    PROFILE?.end();
    return ce;
  }
  const logits = tf.matMul(x, W(w, 'lm_head') as tf.Tensor2D); // [B·T, V]
  const logp = tf.logSoftmax(logits);
  const onehot = tf.oneHot(targets, logits.shape[1] as number).toFloat();
  const ce = tf.neg(tf.sum(logp.mul(onehot))).div(targets.shape[0]) as tf.Scalar;
  PROFILE?.end();
  return ce;
}

/** Logits of the LM head (for sampling). */
export function lmLogits(h: tf.Tensor2D, w: Weights): tf.Tensor2D {
  const x = layerNorm(h, W(w, 'ln_f.g'), W(w, 'ln_f.b'));
  return tf.matMul(x, W(w, 'lm_head') as tf.Tensor2D);
}
