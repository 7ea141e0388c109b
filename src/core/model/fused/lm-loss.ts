import tf from '../../util/tfjs.cjs';
import { readView } from '../../backend/view.js';
import { gemmNtScratch, gemmScratch } from '../kernels/fused-wasm.js';
import { customOp, kernels, output, ptr, taping } from './io.js';

/**
 * The LM head and its mean cross-entropy as one fused operation (kernels/gemm.c, xent.c):
 *   z = x·W [N, V],  ce = (1/N) Σ_i (log Σ_v e^{z_{i,v}} − z_{i,t_i})
 * The forward pass keeps G = ∂ce/∂z = (softmax(z) − onehot(t)) / N; backward, for an upstream dy:
 *   dz = dy·G,  dx = dz·Wᵀ,  dW = xᵀ·dz
 * x [N, d] (after the final layer norm), W [d, V], targets [N] int32 (constants) → scalar.
 */
export function fusedLmLoss(x: tf.Tensor2D, w: tf.Tensor, targets: tf.Tensor1D): tf.Scalar {
  const [N, d] = x.shape;
  const V = w.shape[1]!;
  return customOp([x, w], ([xt, wt], save) => {
    const k = kernels();
    const z = k.alloc(N * V);
    const G = taping() ? output(k, [N, V]) : undefined;
    k.k.gemm(ptr(k, xt!), d, 1, ptr(k, wt!), z, N, d, V, 0, 0, k.alloc(gemmScratch(d, V)));
    const ce = k.k.softmax_xent(z, ptr(k, targets), G?.p ?? z, N, V); // G may overwrite z
    if (G) save([xt!, wt!, G.t]);
    return {
      value: tf.scalar(ce),
      grad: (dy, [sx, sw, sg]) => {
        const q = kernels();
        const dz = q.alloc(N * V);
        q.k.scale(ptr(q, sg!), readView(dy)[0]!, dz, N * V);
        const [dx, dw] = [output(q, [N, d]), output(q, [d, V])];
        const scratch = q.alloc(Math.max(gemmNtScratch(V, d), gemmScratch(N, V)));
        q.k.gemm_nt(dz, ptr(q, sw!), dx.p, N, V, d, scratch, 0);
        q.k.gemm(ptr(q, sx!), 1, d, dz, dw.p, d, N, V, 0, 0, scratch);
        return [dx.t, dw.t];
      },
    };
  }) as tf.Scalar;
}
