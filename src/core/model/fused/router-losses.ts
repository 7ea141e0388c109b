import tf from '../../util/tfjs.cjs';
import type { Config } from '../../config/defaults.js';
import type { RoutingConstants } from '../../router/gates.js';
import { readView, tensorFrom } from '../../backend/view.js';
import { customOp, kernels, output, ptr } from './io.js';
import { normalised, scores } from './scores.js';

type Moe = Config['moe'];

/**
 * router/gates.ts's balance loss as one fused operation on the logits [N, E], α = moe.balance_loss_coef:
 *   aux_loss      B = (α·E/G) Σ_g Σ_i f_{g,i} P_{g,i},  P_{g,i} = (1/S) Σ_{t in g} s'_{t,i}  (S = N/G tokens a group)
 *   seq_aux_loss  B = (α/B_s) Σ_b Σ_i f'_{b,i} P_{b,i}, the same over the B_s sequences
 *   ∂s'_{t,i} = ∂B · coef · f_{g(t),i} / S, then through s' = s/Σs (sigmoid) and the scores (scores.ts)
 * aux_free and none: 0 (a constant, no operation). `probs`: the scores s of the logits when the caller has them.
 */
export function fusedBalanceLoss(logits: tf.Tensor2D, rc: RoutingConstants, moe: Moe, probs?: Float32Array): tf.Scalar {
  const [N, E] = logits.shape;
  const seq = moe.balance === 'seq_aux_loss';
  if (!seq && moe.balance !== 'aux_loss') return tf.scalar(0);
  if (seq && !rc.seqFraction) throw new Error('seq_aux_loss needs the sequences\' routing fractions');
  const fractions = seq ? rc.seqFraction! : rc.fraction;
  const G = fractions.shape[0];
  const f = readView(fractions).slice();
  const S = N / G;
  const coef = seq ? moe.balance_loss_coef / G : (moe.balance_loss_coef * E) / G;
  return customOp([logits], ([z], save) => {
    const s = probs ?? scores(readView(z!), N, E, moe);
    save([]);
    return {
      value: tf.scalar(balanceValue(normalised(s, N, E, moe), f, G, E) * coef),
      grad: (dy) => [tensorFrom(balanceGradient((readView(dy)[0]! * coef) / S, f, s, N, E, S, moe), [N, E])],
    };
  }) as tf.Scalar;
}

/** Σ_g Σ_i f_{g,i} · (1/S) Σ_{t in g} s'_{t,i}, over G groups of S = N/G rows of sn [N, E] */
function balanceValue(sn: Float32Array, f: Float32Array, G: number, E: number): number {
  const S = sn.length / E / G;
  const p = new Float64Array(E);
  let total = 0;
  for (let g = 0; g < G; g++) {
    p.fill(0);
    for (let t = g * S; t < (g + 1) * S; t++) for (let i = 0; i < E; i++) p[i]! += sn[t * E + i]!;
    for (let i = 0; i < E; i++) total += (p[i]! / S) * f[g * E + i]!;
  }
  return total;
}

/**
 * ∂L/∂z of the balance loss row by row, ∂s'_{t,i} = k · f_{g(t),i} (k = ∂B · coef / S), through s' = s / Σ s
 * (sigmoid): ∂s_j = (∂s'_j − Σ_i ∂s'_i s'_i) / Σ s, and the scores (scores.ts's scoresBackward), in one pass.
 */
function balanceGradient(
  k: number, f: Float32Array, s: Float32Array, N: number, E: number, S: number, moe: Moe,
): Float32Array {
  const dz = new Float32Array(N * E);
  if (moe.router === 'hash') return dz;
  const sigmoid = moe.score === 'sigmoid';
  for (let t = 0; t < N; t++) {
    const o = t * E, fg = Math.floor(t / S) * E;
    let sum = 0, dot = 0;
    if (sigmoid) {
      for (let i = 0; i < E; i++) sum += s[o + i]!;
      for (let i = 0; i < E; i++) dot += (k * f[fg + i]! * s[o + i]!) / sum;
    }
    let dot2 = 0;
    for (let i = 0; i < E; i++) {
      const dn = sigmoid ? (k * f[fg + i]! - dot) / sum : k * f[fg + i]!;
      dz[o + i] = dn;
      dot2 += dn * s[o + i]!;
    }
    for (let i = 0; i < E; i++) dz[o + i] = sigmoid ? dz[o + i]! * s[o + i]! * (1 - s[o + i]!) : s[o + i]! * (dz[o + i]! - dot2);
  }
  return dz;
}

/**
 * The router z-loss (ST-MoE §3.1) as one fused operation (kernels/router.c): Z = c · (1/N) Σ_t (lse_t)²,
 * lse_t = log Σ_i e^{z_{t,i}};  ∂z_{t,i} = ∂Z · c · (2/N) · lse_t · softmax(z_t)_i.  None for hash routing or c = 0.
 */
export function fusedZLoss(logits: tf.Tensor2D, moe: Moe): tf.Scalar {
  if (moe.router === 'hash' || moe.z_loss_coef === 0) return tf.scalar(0);
  const [N, E] = logits.shape;
  const c = moe.z_loss_coef;
  return customOp([logits], ([z], save) => {
    const k = kernels();
    const lse = output(k, [N]);
    k.k.router_scores(ptr(k, z!), k.alloc(N * E), lse.p, N, E, 0);
    const l = k.view(lse.p, N);
    let total = 0;
    for (let t = 0; t < N; t++) total += l[t]! * l[t]!;
    save([z!, lse.t]);
    return {
      value: tf.scalar((c * total) / N),
      grad: (dy, [sz, sl]) => {
        const q = kernels();
        const dz = output(q, [N, E]);
        q.k.zloss_bwd(ptr(q, sz!), ptr(q, sl!), (readView(dy)[0]! * c * 2) / N, dz.p, N, E);
        return [dz.t];
      },
    };
  }) as tf.Scalar;
}
