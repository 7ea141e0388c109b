import tf from '../../util/tfjs.cjs';
import type { Config } from '../../config/defaults.js';
import type { RoutingConstants } from '../../router/gates.js';
import { readView, tensorFrom } from '../../backend/view.js';
import { customOp, kernels, output, ptr } from './io.js';
import { scores, scoresBackward } from './scores.js';

type Moe = Config['moe'];

/** Each choice's expert and keep flag (index t·k + c), read from the routing constants' one-hot rows. */
export function choices(rc: RoutingConstants, N: number, E: number): { expert: Int32Array; keep: Float32Array } {
  const K = rc.onehot.length;
  const expert = new Int32Array(N * K);
  const keep = new Float32Array(N * K);
  for (let c = 0; c < K; c++) {
    const oh = readView(rc.onehot[c]!);
    for (let t = 0; t < N; t++) for (let e = 0; e < E; e++) if (oh[t * E + e] === 1) expert[t * K + c] = e;
    const kp = readView(rc.keep[c]!);
    for (let t = 0; t < N; t++) keep[t * K + c] = kp[t]!;
  }
  return { expert, keep };
}

/**
 * The gates of router/gates.ts's combine from the scores s [N, E] (all k choices of token t at t·k + c):
 *   u^c = s_{t,e^c}, over Σ_{c'} s_{t,e^{c'}} with moe.norm_topk and k > 1;  g^c = u^c · moe.topk_scaling;
 *   G^c = g^c, or g^c / stop_gradient(g^c) = 1 with scale_by_prob false;  hash: G^c = 1.
 */
function gates(
  s: Float32Array, expert: Int32Array, N: number, E: number, K: number, moe: Moe,
): { u: Float32Array; total: Float32Array; g: Float32Array } {
  const u = new Float32Array(N * K), total = new Float32Array(N).fill(1), g = new Float32Array(N * K);
  for (let t = 0; t < N; t++) {
    for (let c = 0; c < K; c++) u[t * K + c] = s[t * E + expert[t * K + c]!]!;
    if (K > 1 && moe.norm_topk) {
      let sum = 0;
      for (let c = 0; c < K; c++) sum = Math.fround(sum + u[t * K + c]!);
      total[t] = sum;
      for (let c = 0; c < K; c++) u[t * K + c]! /= sum;
    }
    for (let c = 0; c < K; c++) g[t * K + c] = u[t * K + c]! * moe.topk_scaling;
  }
  return { u, total, g };
}

/**
 * h' = h + (Σ_c keep_{t,c} · G^c_t · o^c_t + shared) ⊙ m, the Switch layer's combine and residual as
 * one fused operation (kernels/combine.c; the values of router/gates.ts's combine, stages.ts's sum). `probs`: the
 * scores s of the logits when the caller has them. Backward, dM = dh' ⊙ m:
 *   ∂o^c = keep·G^c·dM,  ∂shared = dM,  ∂h = dh',  ∂G^c = keep·⟨dM, o^c⟩,  ∂g^c = ∂G^c (/g^c without scale_by_prob),
 * ∂u^c = topk_scaling·∂g^c,  ∂s_{t,e^j} = (∂u^j − Σ_c ∂u^c u^c) / Σ_c s_{t,e^c} (norm_topk) or ∂u^j,  then ∂z
 * (scores.ts)
 * h, o^c, shared [N, d]; logits [N, E].
 */
export function fusedCombine(
  h: tf.Tensor2D, logits: tf.Tensor2D, outputs: tf.Tensor2D[], rc: RoutingConstants, moe: Moe, shared?: tf.Tensor2D,
  mask?: tf.Tensor, probs?: Float32Array,
): tf.Tensor2D {
  const [N, E] = logits.shape;
  const d = h.shape[1];
  const K = outputs.length;
  const { expert, keep } = choices(rc, N, E);
  const hash = moe.router === 'hash';
  const s = probs ?? scores(readView(logits), N, E, moe);
  const gt = gates(s, expert, N, E, K, moe);
  const coef = new Float32Array(N * K);
  for (let i = 0; i < coef.length; i++) coef[i] = (hash || !moe.scale_by_prob ? 1 : gt.g[i]!) * keep[i]!;
  return customOp([h, logits, ...outputs, ...(shared ? [shared] : [])], (xs, save) => {
    const k = kernels();
    const y = output(k, [N, d]);
    const outs = k.putInts(Int32Array.from(xs.slice(2, 2 + K), (o) => ptr(k, o)));
    k.k.combine_fwd(
      ptr(k, xs[0]!), outs, k.put(coef), shared ? ptr(k, xs[2 + K]!) : 0, mask ? ptr(k, mask) : 0, y.p, N, d, K,
    );
    save([...xs.slice(2, 2 + K), ...(mask ? [mask] : [])]);
    return {
      value: y.t,
      grad: (dy, saved) => {
        const q = kernels();
        const douts = Array.from({ length: K }, () => output(q, [N, d]));
        const dM = shared ? output(q, [N, d]) : { t: undefined, p: q.alloc(N * d) };
        const [qo, qd, dG] = [
          q.putInts(Int32Array.from(saved.slice(0, K), (o) => ptr(q, o))),
          q.putInts(Int32Array.from(douts, (o) => o.p)), q.alloc(N * K),
        ];
        q.k.combine_bwd(ptr(q, dy), mask ? ptr(q, saved[K]!) : 0, qo, q.put(coef), q.put(keep), dM.p, qd, dG, N, d, K);
        const ds = new Float32Array(N * E);
        if (!hash) gateBackward(q.view(dG, N * K), gt, expert, ds, N, E, K, moe);
        const grads = [dy, tensorFrom(scoresBackward(ds, s, N, E, moe), [N, E]), ...douts.map((o) => o.t)];
        return dM.t ? [...grads, dM.t] : grads;
      },
    };
  }) as tf.Tensor2D;
}

/** ∂s (into ds) from the gates' ∂G (see fusedCombine). */
function gateBackward(
  dG: Float32Array, gt: { u: Float32Array; total: Float32Array; g: Float32Array }, expert: Int32Array, ds: Float32Array,
  N: number, E: number, K: number, moe: Moe,
): void {
  const du = new Float64Array(K);
  for (let t = 0; t < N; t++) {
    let dot = 0;
    for (let c = 0; c < K; c++) {
      const i = t * K + c;
      const dg = moe.scale_by_prob ? dG[i]! : dG[i]! / gt.g[i]!;
      du[c] = dg * moe.topk_scaling;
      dot += du[c]! * gt.u[i]!;
    }
    const norm = K > 1 && moe.norm_topk;
    for (let c = 0; c < K; c++) ds[t * E + expert[t * K + c]!]! += norm ? (du[c]! - dot) / gt.total[t]! : du[c]!;
  }
}
