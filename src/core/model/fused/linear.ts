import tf from '../../util/tfjs.cjs';
import { gemmNtScratch, gemmScratch } from '../kernels/fused-wasm.js';
import { customOp, kernels, output, ptr, type FusedKernels } from './io.js';

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

/** dO = dy ⊙ m in the arena (dy itself without a mask); its pointer. */
export function maskedGrad(k: FusedKernels, dy: tf.Tensor, mask: tf.Tensor | undefined): number {
  if (!mask) return ptr(k, dy);
  const p = k.alloc(dy.size);
  k.k.mul(ptr(k, dy), ptr(k, mask), p, dy.size);
  return p;
}

/** y = r + o ⊙ m in place at po (an output tensor's values) */
export function residualInPlace(
  k: FusedKernels, po: number, residual: tf.Tensor | undefined, mask: tf.Tensor | undefined, n: number,
): void {
  if (mask && !residual) k.k.mul(po, ptr(k, mask), po, n);
  if (residual) k.k.add_masked(ptr(k, residual), po, mask ? ptr(k, mask) : 0, po, n);
}

export function fusedLinear(x: tf.Tensor2D, w: tf.Tensor, extras: LinearExtras = {}): tf.Tensor2D {
  const { bias, residual, mask } = extras;
  const [N, K] = x.shape;
  const F = w.shape[1]!;
  const inputs = [x, w, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  return customOp(inputs, ([xt, wt, ...rest], save) => {
    const k = kernels();
    const y = output(k, [N, F]);
    k.k.gemm(ptr(k, xt!), K, 1, ptr(k, wt!), y.p, N, K, F, bias ? ptr(k, rest[0]!) : 0, 0, k.alloc(gemmScratch(K, F)));
    residualInPlace(k, y.p, residual ? rest.at(-1) : undefined, mask, N * F);
    save([xt!, wt!, ...(mask ? [mask] : [])]);
    return {
      value: y.t,
      grad: (dy, [sx, sw, sm]) => {
        const q = kernels();
        const pd = maskedGrad(q, dy, sm);
        const [dx, dw] = [output(q, [N, K]), output(q, [K, F])];
        const scratch = q.alloc(Math.max(gemmNtScratch(F, K), gemmScratch(N, F)));
        q.k.gemm_nt(pd, ptr(q, sw!), dx.p, N, F, K, scratch, 0);
        q.k.gemm(ptr(q, sx!), 1, K, pd, dw.p, K, N, F, 0, 0, scratch);
        const grads = [dx.t, dw.t];
        if (bias) {
          const db = output(q, [F]);
          q.k.col_sum(pd, db.p, N, F, 0);
          grads.push(db.t);
        }
        if (residual) grads.push(dy); // the same tensor: the tape clones what it must (tape.ts)
        return grads;
      },
    };
  }) as tf.Tensor2D;
}
