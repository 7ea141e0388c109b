import tf from '../../util/tfjs.cjs';
import { customOp, kernels, output, ptr } from './io.js';

/**
 * LayerNorm over the last axis as one fused kernel, forward and backward (kernels/norm.c):
 *   y = (x − μ) / √(σ² + ε) · g + b
 *   dx = r · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂)),  dx̂ = dy ⊙ g,  dg = Σ_rows dy ⊙ x̂,  db = Σ_rows dy
 * The per-row μ and r = 1/√(σ² + ε) are kept for the backward pass ([2, N]), not x̂.
 */
export function fusedLayerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps = 1e-5): tf.Tensor2D {
  const [N, C] = x.shape;
  return customOp([x, g, b], ([xt, gt, bt], save) => {
    const k = kernels();
    const [y, stats] = [output(k, [N, C]), output(k, [2, N])]; // stats: mean | rstd
    k.k.layernorm_fwd(ptr(k, xt!), ptr(k, gt!), ptr(k, bt!), y.p, stats.p, stats.p + 4 * N, N, C, eps);
    save([xt!, gt!, stats.t]);
    return {
      value: y.t,
      grad: (dy, [sx, sg, ss]) => {
        const q = kernels();
        const [dx, dg, db] = [output(q, [N, C]), output(q, [C]), output(q, [C])];
        q.zero(dg.p, C);
        q.zero(db.p, C);
        const st = ptr(q, ss!);
        q.k.layernorm_bwd(ptr(q, sx!), ptr(q, sg!), st, st + 4 * N, ptr(q, dy), dx.p, dg.p, db.p, N, C);
        return [dx.t, dg.t, db.t];
      },
    };
  }) as tf.Tensor2D;
}
