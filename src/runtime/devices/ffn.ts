import tf from '../../core/util/tfjs.cjs';
import { activation, geluDerivative, swigluBackward, type Activation } from '../../core/model/layers.js';
import { colSum } from '../../core/model/ops/col-sum.js';
import { transpose2d } from '../../core/backend/transpose.js';

export type { Activation };

export interface ExpertWeights {
  w1: tf.Tensor2D; // [d_model, d_ff] (swiglu: [d_model, 2·d_ff], gate | up)
  b1: tf.Tensor1D; // [d_ff] (swiglu: [2·d_ff])
  w2: tf.Tensor2D; // [d_ff, d_model]
  b2: tf.Tensor1D; // [d_model]
}

export interface ExpertForward {
  /** o = act(x·W1 + b1)·W2 + b2, [n, d_model] */
  o: tf.Tensor2D;
  /** pre-activation a = x·W1 + b1, [n, d_ff] ([n, 2·d_ff] for swiglu), kept for the backward pass */
  a: tf.Tensor2D;
}

/** One expert FFN on the n rows it was sent. */
export function expertForward(x: tf.Tensor2D, w: ExpertWeights, act: Activation): ExpertForward {
  return tf.tidy(() => {
    const a = tf.matMul(x, w.w1).add(w.b1) as tf.Tensor2D;
    const o = tf.matMul(activation(act, a) as tf.Tensor2D, w.w2).add(w.b2) as tf.Tensor2D;
    return { o, a };
  });
}

export interface ExpertGradients {
  dx: tf.Tensor2D;
  w1: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2: tf.Tensor2D;
  b2: tf.Tensor1D;
}

/**
 * The expert's backward pass, by hand (the design note's equations), with explicit transposes:
 *   dW2 = hᵀ·G,  db2 = Σ_rows G,  dH = G·W2ᵀ,  dA = dH ⊙ act′(a),  dW1 = xᵀ·dA,  db1 = Σ_rows dA,  dX = dA·W1ᵀ
 * (swiglu: dA = [dH ⊙ a_u ⊙ silu′(a_g) | dH ⊙ silu(a_g)], layers.ts)
 */
export function expertBackward(x: tf.Tensor2D, a: tf.Tensor2D, g: tf.Tensor2D, w: ExpertWeights, act: Activation): ExpertGradients {
  return tf.tidy(() => {
    const h = activation(act, a) as tf.Tensor2D;
    const dW2 = tf.matMul(transpose2d(h), g);
    const db2 = colSum(g);
    const dH = tf.matMul(g, transpose2d(w.w2)) as tf.Tensor2D;
    const dA = act === 'swiglu' ? swigluBackward(dH, a) : (dH.mul(act === 'relu' ? tf.step(a, 0) : geluDerivative(a)) as tf.Tensor2D);
    const dW1 = tf.matMul(transpose2d(x), dA);
    const db1 = colSum(dA);
    const dx = tf.matMul(dA, transpose2d(w.w1));
    return { dx: dx as tf.Tensor2D, w1: dW1 as tf.Tensor2D, b1: db1, w2: dW2 as tf.Tensor2D, b2: db2 };
  });
}
