import tf from '../util/tfjs.cjs';
import { scaleShift } from './ops/scale-shift.js';

/** LayerNorm over the last axis: (x − μ) / √(σ² + ε) · g + b. */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps = 1e-5): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  const xhat = x.sub(mean).mul(tf.rsqrt(variance.add(eps))) as tf.Tensor2D;
  return scaleShift(xhat, g, b);
}

/** x·W + b for x [rows, in], W [in, out]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor, b?: tf.Tensor): tf.Tensor2D {
  const y = tf.matMul(x, w as tf.Tensor2D);
  return b ? scaleShift(y as tf.Tensor2D, undefined, b) : (y as tf.Tensor2D);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU, tanh form: 0.5·a·(1 + tanh(√(2/π)·(a + 0.044715·a³))). */
export function gelu(a: tf.Tensor): tf.Tensor {
  return tf.tidy(() => a.mul(0.5).mul(tf.tanh(a.add(a.pow(3).mul(0.044715)).mul(GELU_C)).add(1)));
}

/** d gelu / da, for hand-written expert backward. */
export function geluDerivative(a: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const t = tf.tanh(a.add(a.pow(3).mul(0.044715)).mul(GELU_C));
    const dt = tf.sub(1, t.square()).mul(tf.add(1, a.square().mul(3 * 0.044715)).mul(GELU_C));
    return t.add(1).mul(0.5).add(a.mul(0.5).mul(dt));
  });
}

/**
 * SwiGLU (Shazeer 2020): the first matrix is gate | up side by side, a = [a_g | a_u] of 2·d_ff
 * columns (Megatron-Core's gated linear unit, first half the gate):  h = silu(a_g) ⊙ a_u,
 * silu(v) = v·σ(v).  [n, 2·d_ff] → [n, d_ff]
 */
export function swiglu(a: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [g, u] = tf.split(a, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
    return g.mul(tf.sigmoid(g)).mul(u) as tf.Tensor2D;
  });
}

/**
 * ∂/∂a of Σ dH ⊙ swiglu(a), for hand-written expert backward: [dH ⊙ a_u ⊙ silu′(a_g) | dH ⊙ silu(a_g)],
 * silu′(v) = σ(v)·(1 + v·(1 − σ(v))).  dH [n, d_ff], a [n, 2·d_ff] → [n, 2·d_ff]
 */
export function swigluBackward(dH: tf.Tensor2D, a: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [g, u] = tf.split(a, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
    const sg = tf.sigmoid(g);
    const dSilu = sg.mul(g.mul(tf.sub(1, sg)).add(1));
    return tf.concat([dH.mul(u).mul(dSilu), dH.mul(g.mul(sg))], 1) as tf.Tensor2D;
  });
}

export type Activation = 'relu' | 'gelu' | 'swiglu';

export function activation(name: Activation, a: tf.Tensor): tf.Tensor {
  if (name === 'swiglu') return swiglu(a as tf.Tensor2D);
  return name === 'relu' ? tf.relu(a) : gelu(a);
}

/** Inverted dropout with a mask drawn by the caller from the run's seeded streams. */
export function dropout(x: tf.Tensor, mask: tf.Tensor | undefined): tf.Tensor {
  return mask ? x.mul(mask) : x;
}
