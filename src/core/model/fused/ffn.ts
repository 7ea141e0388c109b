import tf from '../../util/tfjs.cjs';
import type { Activation } from '../layers.js';
import { ffnBackwardAt, ffnDims, ffnForwardAt } from './ffn-core.js';
import { customOp, kernels, output, ptr, taping } from './io.js';
import { maskedGrad, residualInPlace } from './linear.js';

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
export function fusedFfn(
  x: tf.Tensor2D, w: FfnWeights, act: Activation, residual?: tf.Tensor2D, mask?: tf.Tensor,
): tf.Tensor2D {
  const [N, d] = x.shape;
  const s = ffnDims(N, d, w.w1.shape[1]!, w.w2.shape[0]!, act);
  const inputs = [x, w.w1, w.b1, w.w2, w.b2, ...(residual ? [residual] : [])];
  return customOp(inputs, ([xt, w1, b1, w2, b2, rt], save) => {
    const k = kernels();
    const [o, a] = [output(k, [N, d]), taping() ? output(k, [N, s.U]) : undefined];
    const p = { x: ptr(k, xt!), w1: ptr(k, w1!), b1: ptr(k, b1!), w2: ptr(k, w2!), b2: ptr(k, b2!) };
    ffnForwardAt(k, p, s, { o: o.p, a: a?.p ?? k.alloc(N * s.U) });
    residualInPlace(k, o.p, rt, mask, N * d);
    if (a) save([xt!, w1!, w2!, a.t, ...(mask ? [mask] : [])]);
    return {
      value: o.t,
      grad: (dy, [sx, s1, s2, sa, sm]) => {
        const q = kernels();
        const dO = maskedGrad(q, dy, sm);
        const g = [output(q, [N, d]), output(q, [d, s.U]), output(q, [s.U]), output(q, [s.F, d]), output(q, [d])];
        const [gx, g1, gb1, g2, gb2] = g.map((o) => o.p) as number[];
        ffnBackwardAt(q, { x: ptr(q, sx!), w1: ptr(q, s1!), w2: ptr(q, s2!), a: ptr(q, sa!), dO }, s, {
          x: gx!, w1: g1!, b1: gb1!, w2: g2!, b2: gb2!,
        });
        const grads = g.map((o) => o.t);
        return residual ? [...grads, dy] : grads;
      },
    };
  }) as tf.Tensor2D;
}
