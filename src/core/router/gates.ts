import tf from '../util/tfjs.cjs';
import type { Config } from '../config/defaults.js';
import type { RoutingPlan } from './plan.js';

type Moe = Config['moe'];

/** What the coordinator knows of one Switch layer's routing, as constants for the differentiable part. */
export interface RoutingConstants {
  /** per choice c: one-hot of the chosen expert, [N, E] */
  onehot: tf.Tensor2D[];
  /** per choice c: 1 if kept, 0 if dropped, [N, 1] */
  keep: tf.Tensor2D[];
  /** f_{g,i}: fraction of group g's tokens whose first choice is i, [G, E] (no gradient) */
  fraction: tf.Tensor2D;
  /** seq_aux_loss: f'_{b,i} = E/(k·T) · (choices of sequence b that went to i, all k), [B, E] */
  seqFraction?: tf.Tensor2D;
  groups: number;
}

/** `seqLen`: tokens a sequence of this batch holds (for seq_aux_loss; the plan's tokens are sequence-major). */
export function routingConstants(plan: RoutingPlan, seqLen?: number): RoutingConstants {
  const N = plan.slot.length / plan.topK;
  const E = plan.experts;
  const K = plan.topK;
  const onehot: tf.Tensor2D[] = [];
  const keep: tf.Tensor2D[] = [];
  for (let c = 0; c < K; c++) {
    const oh = new Float32Array(N * E);
    const kp = new Float32Array(N);
    for (let t = 0; t < N; t++) {
      const i = t * K + c;
      oh[t * E + plan.expert[i]!] = 1;
      kp[t] = plan.slot[i]! >= 0 ? 1 : 0;
    }
    onehot.push(tf.tensor2d(oh, [N, E]));
    keep.push(tf.tensor2d(kp, [N, 1]));
  }
  const f = Float32Array.from(plan.routed, (n) => n / plan.tokensPerGroup);
  let seqFraction: tf.Tensor2D | undefined;
  if (seqLen) {
    const B = N / seqLen;
    const sf = new Float32Array(B * E);
    for (let i = 0; i < N * K; i++) sf[Math.floor(i / K / seqLen) * E + plan.expert[i]!]! += E / (K * seqLen);
    seqFraction = tf.tensor2d(sf, [B, E]);
  }
  return { onehot, keep, fraction: tf.tensor2d(f, [plan.groups, E]), seqFraction, groups: plan.groups };
}

export function disposeConstants(c: RoutingConstants): void {
  tf.dispose([...c.onehot, ...c.keep, c.fraction, ...(c.seqFraction ? [c.seqFraction] : [])]);
}

/**
 * The router's scores s_t [N, E] from its logits z_t: what chooses the experts and what the gates are
 * made of (Megatron-Core's moe_router_score_function).
 *   softmax  p_{t,i} = e^{z_{t,i}} / Σ_j e^{z_{t,j}}          (Switch, GShard)
 *   sigmoid  s_{t,i} = σ(z_{t,i}), each expert on its own      (DeepSeek-V3 eq. 15)
 *   hash     no router: every score 1/E (the hash chooses; the gate is 1)
 */
export function routerScores(logits: tf.Tensor2D, moe: Moe): tf.Tensor2D {
  if (moe.router === 'hash') return tf.fill(logits.shape, 1 / moe.n_experts) as tf.Tensor2D;
  return moe.score === 'sigmoid' ? tf.sigmoid(logits) : tf.softmax(logits);
}

/**
 * Scores normalised over the experts, s'_{t,i} = s_{t,i} / Σ_j s_{t,j}: the P_i of the balance
 * losses (for softmax this is p itself; Megatron-Core normalises sigmoid scores the same way).
 */
function normalisedScores(logits: tf.Tensor2D, moe: Moe): tf.Tensor2D {
  const s = routerScores(logits, moe);
  return moe.score === 'sigmoid' ? s.div(tf.sum(s, 1, true)) : s;
}

/**
 * Combine: y_t = Σ_c keep_{t,c} · g_{t,c} · o_{t,c}, the gates from the scores of the chosen experts:
 *   top-1: g = s_{t,e}                                  (paper eq. 2; never normalised: one gate would be 1)
 *   top-k: g^c = s_{t,e^c} / Σ_{c'} s_{t,e^{c'}}        (moe.norm_topk true: GShard, DeepSeek-V3 eq. 13)
 *          g^c = s_{t,e^c}                               (norm_topk false: Megatron-Core's pre-softmax)
 *   then g × moe.topk_scaling (Megatron-Core's moe_router_topk_scaling_factor)
 *   hash:  g = 1 (no router)
 * With scale_by_prob false, g / stop_gradient(g): value 1, gradient 1/g (the router still learns).
 * `outputs[c]` is [N, d]; `logits` [N, E].
 */
export function combine(logits: tf.Tensor2D, outputs: tf.Tensor2D[], rc: RoutingConstants, moe: Moe): tf.Tensor2D {
  if (moe.router === 'hash') return outputs.map((o, c) => o.mul(rc.keep[c]!)).reduce((a, b) => a.add(b)) as tf.Tensor2D;
  const scores = routerScores(logits, moe);
  let gates = rc.onehot.map((oh) => tf.sum(scores.mul(oh), 1, true)); // [N, 1] each
  if (gates.length > 1 && moe.norm_topk) {
    const total = gates.reduce((a, b) => a.add(b));
    gates = gates.map((g) => g.div(total));
  }
  if (moe.topk_scaling !== 1) gates = gates.map((g) => g.mul(moe.topk_scaling));
  if (!moe.scale_by_prob) gates = gates.map((g) => g.div(tf.tensor(g.dataSync(), g.shape))); // g / stop_gradient(g)
  return outputs.map((o, c) => o.mul(gates[c]!.mul(rc.keep[c]!))).reduce((a, b) => a.add(b)) as tf.Tensor2D;
}

/**
 * The balance loss of one Switch layer (moe.balance), α = moe.balance_loss_coef:
 *   aux_loss      B = α · E · Σ_i f_i · P_i per routing group, averaged over groups (paper eq. 4–6):
 *                 f_i the fraction of the group's tokens whose first choice is i, P_i = (1/S) Σ_t s'_{t,i}
 *   seq_aux_loss  B = α · Σ_i f'_i · P_i per sequence, averaged over sequences (DeepSeek-V3 eq. 17–20):
 *                 f'_i = E/(k·T) · Σ_t 1[i among t's k choices], P_i = (1/T) Σ_t s'_{t,i}
 *   aux_free, none: 0 (aux-free balancing moves the routing bias instead)
 */
export function balanceLoss(logits: tf.Tensor2D, rc: RoutingConstants, moe: Moe): tf.Scalar {
  const [N, E] = logits.shape;
  const alpha = moe.balance_loss_coef;
  if (moe.balance === 'aux_loss') {
    const P = tf.mean(normalisedScores(logits, moe).reshape([rc.groups, N / rc.groups, E]), 1); // [G, E]
    return tf.sum(P.mul(rc.fraction)).mul((alpha * E) / rc.groups) as tf.Scalar;
  }
  if (moe.balance === 'seq_aux_loss') {
    if (!rc.seqFraction) throw new Error('seq_aux_loss needs the sequences\' routing fractions');
    const B = rc.seqFraction.shape[0];
    const P = tf.mean(normalisedScores(logits, moe).reshape([B, N / B, E]), 1); // [B, E]
    return tf.sum(P.mul(rc.seqFraction)).mul(alpha / B) as tf.Scalar;
  }
  return tf.scalar(0);
}

/** Router z-loss (ST-MoE §3.1): Z = c · (1/S) Σ_t (logsumexp z_t)²; none for hash routing (no logits). */
export function zLoss(logits: tf.Tensor2D, moe: Moe): tf.Scalar {
  if (moe.router === 'hash' || moe.z_loss_coef === 0) return tf.scalar(0);
  return tf.mean(tf.logSumExp(logits, 1).square()).mul(moe.z_loss_coef) as tf.Scalar;
}
