import tf from '../../util/tfjs.cjs';
import { customOp, kernels, put, take } from './io.js';

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
    const [px, pg, pb] = [put(k, xt!), put(k, gt!), put(k, bt!)];
    const [py, pm] = [k.alloc(N * C), k.alloc(2 * N)]; // mean | rstd
    k.k.layernorm_fwd(px, pg, pb, py, pm, pm + 4 * N, N, C, eps);
    const y = take(k, py, [N, C]);
    save([xt!, gt!, take(k, pm, [2, N])]);
    return {
      value: y,
      grad: (dy, [sx, sg, stats]) => {
        const q = kernels();
        const [qx, qg, qs, qdy] = [put(q, sx!), put(q, sg!), put(q, stats!), put(q, dy)];
        const [qdx, qdg, qdb] = [q.alloc(N * C), q.zeros(C), q.zeros(C)];
        q.k.layernorm_bwd(qx, qg, qs, qs + 4 * N, qdy, qdx, qdg, qdb, N, C);
        return [take(q, qdx, [N, C]), take(q, qdg, [C]), take(q, qdb, [C])];
      },
    };
  }) as tf.Tensor2D;
}
