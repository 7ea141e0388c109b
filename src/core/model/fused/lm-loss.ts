import tf from '../../util/tfjs.cjs';
import { customOp, kernels, put, take, taping } from './io.js';

/**
 * The LM head and its mean cross-entropy as one fused operation (kernels/gemm.c, xent.c):
 *   z = x·W [N, V],  ce = (1/N) Σ_i (log Σ_v e^{z_{i,v}} − z_{i,t_i})
 * The forward pass keeps G = ∂ce/∂z = (softmax(z) − onehot(t)) / N; backward, for an upstream dy:
 *   dz = dy·G,  dx = dz·Wᵀ,  dW = xᵀ·dz
 * x [N, d] (after the final layer norm), W [d, V], targets [N] int32 (constants) → scalar.
 */
export function fusedLmLoss(x: tf.Tensor2D, w: tf.Tensor, targets: tf.Tensor1D): tf.Scalar {
  const ids = targets.dataSync() as Int32Array;
  const [N, d] = x.shape;
  const V = w.shape[1]!;
  return customOp([x, w], ([xt, wt], save) => {
    const k = kernels();
    const [px, pw, pt, pz, pg] = [put(k, xt!), put(k, wt!), k.putInts(ids), k.alloc(N * V), k.alloc(N * V)];
    k.k.gemm(px, d, 1, pw, pz, N, d, V, 0, 0);
    const ce = k.k.softmax_xent(pz, pt, pg, N, V);
    if (taping()) save([xt!, wt!, take(k, pg, [N, V])]);
    return {
      value: tf.scalar(ce),
      grad: (dy, [sx, sw, sg]) => {
        const q = kernels();
        const scale = dy.dataSync()[0]!;
        const pd = put(q, sg!);
        if (scale !== 1) for (let i = pd >> 2, e = i + N * V, f = q.f32; i < e; i++) f[i]! *= scale;
        const [qx, qw, pdx, pdw, scratch] = [put(q, sx!), put(q, sw!), q.alloc(N * d), q.alloc(d * V), q.alloc(d * V)];
        q.k.gemm_nt(pd, qw, pdx, N, V, d, scratch, 0);
        q.k.gemm(qx, 1, d, pd, pdw, d, N, V, 0, 0);
        return [take(q, pdx, [N, d]), take(q, pdw, [d, V])];
      },
    };
  }) as tf.Scalar;
}
