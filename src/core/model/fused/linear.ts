import tf from '../../util/tfjs.cjs';
import { customOp, kernels, put, take, type FusedKernels } from './io.js';

/**
 * y = r + (x·W + b) ⊙ m as one fused operation (kernels/gemm.c): a linear layer with its bias, and
 * optionally the residual r it is added to and the dropout mask m of the branch. Backward, with
 * dO = dy ⊙ m:  dx = dO·Wᵀ,  dW = xᵀ·dO,  db = Σ_rows dO,  dr = dy.
 * x [N, K], W [K, F], b [F], r and m [N, F].
 */
export interface LinearExtras {
  bias?: tf.Tensor;
  residual?: tf.Tensor2D;
  mask?: tf.Tensor;
}

/** dO = dy ⊙ m into the kernels' memory (dy itself without a mask); its pointer. */
export function maskedGrad(k: FusedKernels, dy: tf.Tensor, mask: tf.Tensor | undefined): number {
  const p = put(k, dy);
  if (mask) k.k.mul(p, put(k, mask), p, dy.size);
  return p;
}

/** y = r + o ⊙ m from o at po (in place), as a tensor */
export function residualOut(k: FusedKernels, po: number, residual: tf.Tensor | undefined, mask: tf.Tensor | undefined, shape: number[]): tf.Tensor {
  const n = shape[0]! * shape[1]!;
  if (mask && !residual) k.k.mul(po, put(k, mask), po, n);
  if (residual) k.k.add_masked(put(k, residual), po, mask ? put(k, mask) : 0, po, n);
  return take(k, po, shape);
}

export function fusedLinear(x: tf.Tensor2D, w: tf.Tensor, extras: LinearExtras = {}): tf.Tensor2D {
  const { bias, residual, mask } = extras;
  const [N, K] = x.shape;
  const F = w.shape[1]!;
  const inputs = [x, w, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  return customOp(inputs, ([xt, wt, ...rest], save) => {
    const bt = bias ? rest[0] : undefined;
    const k = kernels();
    const [px, pw, pb] = [put(k, xt!), put(k, wt!), bt ? put(k, bt) : 0];
    const py = k.alloc(N * F);
    k.k.gemm(px, K, 1, pw, py, N, K, F, pb, 0);
    const y = residualOut(k, py, residual ? rest.at(-1) : undefined, mask, [N, F]);
    save([xt!, wt!, ...(mask ? [mask] : [])]);
    return {
      value: y,
      grad: (dy, [sx, sw, sm]) => {
        const q = kernels();
        const pd = maskedGrad(q, dy, sm);
        const [qx, qw] = [put(q, sx!), put(q, sw!)];
        const [pdx, pdw, scratch] = [q.alloc(N * K), q.alloc(K * F), q.alloc(K * F)];
        q.k.gemm_nt(pd, qw, pdx, N, F, K, scratch, 0);
        q.k.gemm(qx, 1, K, pd, pdw, K, N, F, 0, 0);
        const grads = [take(q, pdx, [N, K]), take(q, pdw, [K, F])];
        if (bias) {
          const pdb = q.alloc(F);
          q.k.col_sum(pd, pdb, N, F, 0);
          grads.push(take(q, pdb, [F]));
        }
        if (residual) grads.push(dy.clone());
        return grads;
      },
    };
  }) as tf.Tensor2D;
}
