import tf from '../backend/tfjs.cjs';
import type { RoutingPlan } from './plan.js';

/** What the coordinator knows of one Switch layer's routing, as constants for the differentiable part. */
export interface RoutingConstants {
  /** per choice c: one-hot of the chosen expert, [N, E] */
  onehot: tf.Tensor2D[];
  /** per choice c: 1 if kept, 0 if dropped, [N, 1] */
  keep: tf.Tensor2D[];
  /** f_{g,i}: fraction of group g's tokens whose first choice is i, [G, E] (no gradient) */
  fraction: tf.Tensor2D;
  groups: number;
}

export function routingConstants(plan: RoutingPlan): RoutingConstants {
  const N = plan.slot.length / plan.topK;
  const E = plan.experts;
  const onehot: tf.Tensor2D[] = [];
  const keep: tf.Tensor2D[] = [];
  for (let c = 0; c < plan.topK; c++) {
    const oh = new Float32Array(N * E);
    const kp = new Float32Array(N);
    for (let t = 0; t < N; t++) {
      const i = t * plan.topK + c;
      oh[t * E + plan.expert[i]!] = 1;
      kp[t] = plan.slot[i]! >= 0 ? 1 : 0;
    }
    onehot.push(tf.tensor2d(oh, [N, E]));
    keep.push(tf.tensor2d(kp, [N, 1]));
  }
  const f = Float32Array.from(plan.routed, (n) => n / plan.tokensPerGroup);
  return { onehot, keep, fraction: tf.tensor2d(f, [plan.groups, E]), groups: plan.groups };
}

export function disposeConstants(c: RoutingConstants): void {
  tf.dispose([...c.onehot, ...c.keep, c.fraction]);
}

/**
 * Combine: y_t = Σ_c keep_{t,c} · g_{t,c} · o_{t,c}.
 *   top-1: g = p_{t,e}  (paper eq. 2; with scale_by_prob false g = p / sg(p), value 1, gradient 1/p)
 *   top-2: g^c = p_{t,e^c} / (p_{t,e¹} + p_{t,e²})  (GShard)
 * `outputs[c]` is [N, d]; `logits` [N, E].
 */
export function combine(logits: tf.Tensor2D, outputs: tf.Tensor2D[], rc: RoutingConstants, scaleByProb: boolean): tf.Tensor2D {
  const probs = tf.softmax(logits);
  let gates = rc.onehot.map((oh) => tf.sum(probs.mul(oh), 1, true)); // [N, 1] each
  if (gates.length > 1) {
    const total = gates.reduce((a, b) => a.add(b));
    gates = gates.map((g) => g.div(total));
  }
  if (!scaleByProb) gates = gates.map((g) => g.div(tf.tensor(g.dataSync(), g.shape))); // g / stop_gradient(g)
  return outputs.map((o, c) => o.mul(gates[c]!.mul(rc.keep[c]!))).reduce((a, b) => a.add(b)) as tf.Tensor2D;
}

/**
 * Load-balancing loss (paper eq. 4–6), per group, averaged over groups:
 *   B = α · N · Σ_i f_i · P_i,  P_i = (1/S) Σ_t p_{t,i}
 */
export function balanceLoss(logits: tf.Tensor2D, rc: RoutingConstants, alpha: number): tf.Scalar {
  const [N, E] = logits.shape;
  const probs = tf.softmax(logits).reshape([rc.groups, N / rc.groups, E]);
  const P = tf.mean(probs, 1); // [G, E]
  return tf.sum(P.mul(rc.fraction)).mul((alpha * E) / rc.groups) as tf.Scalar;
}

/** Router z-loss (ST-MoE §3.1): Z = c · (1/S) Σ_t (logsumexp z_t)². */
export function zLoss(logits: tf.Tensor2D, coef: number): tf.Scalar {
  return tf.mean(tf.logSumExp(logits, 1).square()).mul(coef) as tf.Scalar;
}
