import tf from '../../core/util/tfjs.cjs';
import { activation, geluDerivative, swigluBackward, type Activation } from '../../core/model/layers.js';
import { colSum } from '../../core/model/ops/col-sum.js';
import { transpose2d } from '../../core/backend/transpose.js';
import { fusedKernels } from '../../core/model/kernels/fused-wasm.js';
import { ffnDims, ffnForwardAt, ffnBackwardAt } from '../../core/model/fused/ffn-core.js';

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
export function expertBackward(
  x: tf.Tensor2D, a: tf.Tensor2D, g: tf.Tensor2D, w: ExpertWeights, act: Activation,
): ExpertGradients {
  return tf.tidy(() => {
    const h = activation(act, a) as tf.Tensor2D;
    const dW2 = tf.matMul(transpose2d(h), g);
    const db2 = colSum(g);
    const dH = tf.matMul(g, transpose2d(w.w2)) as tf.Tensor2D;
    const dA = act === 'swiglu' ? swigluBackward(
      dH, a,
    ) : (dH.mul(act === 'relu' ? tf.step(a, 0) : geluDerivative(a)) as tf.Tensor2D);
    const dW1 = tf.matMul(transpose2d(x), dA);
    const db1 = colSum(dA);
    const dx = tf.matMul(dA, transpose2d(w.w1));
    return { dx: dx as tf.Tensor2D, w1: dW1 as tf.Tensor2D, b1: db1, w2: dW2 as tf.Tensor2D, b2: db2 };
  });
}

/** An expert's weights as the host store keeps them (flat, row-major), for the fused kernels. */
export interface HostExpertWeights {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

const dimsOf = (
  n: number, d: number, w: HostExpertWeights, act: Activation,
) => ffnDims(n, d, w.b1.length, w.w2.length / d, act);

/** An expert's rows kept on the wasm heap from its forward to its backward (freeRows releases them). */
export interface HeapRows {
  p: number;
  n: number;
}

export function freeRows(...rows: HeapRows[]): void {
  const k = fusedKernels()!;
  for (const r of rows) k.free(r.p);
}

/**
 * expertForward on the fused kernels (parallel.kernels fused on wasm): x [n, d] rows in; o a view of the
 * wasm heap (read it before the next kernel call); x and a = x·W1 + b1 kept on the heap for the backward.
 */
export function hostExpertForward(
  x: Float32Array, n: number, w: HostExpertWeights, act: Activation,
): { o: Float32Array; x: HeapRows; a: HeapRows } {
  const k = fusedKernels()!.reset();
  const d = x.length / n;
  const s = dimsOf(n, d, w, act);
  const [kx, ka] = [{ p: k.malloc(n * d), n }, { p: k.malloc(n * s.U), n }];
  k.f32.set(x, kx.p >> 2);
  const o = k.alloc(n * d);
  ffnForwardAt(k, { x: kx.p, w1: k.put(w.w1), b1: k.put(w.b1), w2: k.put(w.w2), b2: k.put(w.b2) }, s, { o, a: ka.p });
  return { o: k.view(o, n * d), x: kx, a: ka };
}

/**
 * expertBackward on the fused kernels: the same equations, from the kept x and a and the output
 * gradient g [n, d]; every result a view of the wasm heap, valid until the next kernel call.
 */
export function hostExpertBackward(
  x: HeapRows, a: HeapRows, g: Float32Array, w: HostExpertWeights, act: Activation,
): HostExpertWeights & { dx: Float32Array } {
  const k = fusedKernels()!.reset();
  const n = x.n;
  const d = g.length / n;
  const s = dimsOf(n, d, w, act);
  const r = { x: k.alloc(n * d), w1: k.alloc(d * s.U), b1: k.alloc(s.U), w2: k.alloc(s.F * d), b2: k.alloc(d) };
  ffnBackwardAt(k, { x: x.p, w1: k.put(w.w1), w2: k.put(w.w2), a: a.p, dO: k.put(g) }, s, r);
  return {
    dx: k.view(r.x, n * d), w1: k.view(r.w1, d * s.U), b1: k.view(r.b1, s.U), w2: k.view(r.w2, s.F * d),
    b2: k.view(r.b2, d),
  };
}
