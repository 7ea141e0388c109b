import tf from '../../util/tfjs.cjs';
import type { Activation } from '../layers.js';
import { ffnBackwardAt, ffnDims, ffnForwardAt } from './ffn-core.js';
import { customOp, kernels, put, take, taping } from './io.js';
import { maskedGrad, residualOut } from './linear.js';

/** An FFN's weights: W1 [d, U] (U = F, or 2F for swiglu: gate | up), b1 [U], W2 [F, d], b2 [d]. */
export interface FfnWeights {
  w1: tf.Tensor;
  b1: tf.Tensor;
  w2: tf.Tensor;
  b2: tf.Tensor;
}

/**
 * y = r + (act(x·W1 + b1)·W2 + b2) ⊙ m as one fused operation (ffn-core.ts); the pre-activation
 * a = x·W1 + b1 is kept for the backward pass, which recomputes h = act(a) and, with dO = dy ⊙ m,
 * gives dx, dW1, db1, dW2, db2 (ffn-core.ts) and dr = dy.
 * x [N, d] → [N, d]. Dense FFN blocks (with residual and mask) and shared experts (without) use it.
 */
export function fusedFfn(x: tf.Tensor2D, w: FfnWeights, act: Activation, residual?: tf.Tensor2D, mask?: tf.Tensor): tf.Tensor2D {
  const [N, d] = x.shape;
  const s = ffnDims(N, d, w.w1.shape[1]!, w.w2.shape[0]!, act);
  const inputs = [x, w.w1, w.b1, w.w2, w.b2, ...(residual ? [residual] : [])];
  return customOp(inputs, ([xt, w1, b1, w2, b2, rt], save) => {
    const k = kernels();
    const p = { x: put(k, xt!), w1: put(k, w1!), b1: put(k, b1!), w2: put(k, w2!), b2: put(k, b2!) };
    const f = ffnForwardAt(k, p, s);
    if (taping()) save([xt!, w1!, w2!, take(k, f.a, [N, s.U]), ...(mask ? [mask] : [])]);
    return {
      value: residualOut(k, f.o, rt, mask, [N, d]),
      grad: (dy, [sx, s1, s2, sa, sm]) => {
        const q = kernels();
        const dO = maskedGrad(q, dy, sm);
        const g = ffnBackwardAt(q, { x: put(q, sx!), w1: put(q, s1!), w2: put(q, s2!), a: put(q, sa!), dO }, s);
        const grads = [take(q, g.dx, [N, d]), take(q, g.w1, [d, s.U]), take(q, g.b1, [s.U]), take(q, g.w2, [s.F, d]), take(q, g.b2, [d])];
        return residual ? [...grads, dy.clone()] : grads;
      },
    };
  }) as tf.Tensor2D;
}
