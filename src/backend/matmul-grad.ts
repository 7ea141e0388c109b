import * as tf from '@tensorflow/tfjs';
import { transpose2d } from './transpose.js';

/** Swaps the last two axes (explicitly: on wasm this is far faster than matMul's transpose flags). */
export function transposeLast(x: tf.Tensor): tf.Tensor {
  if (x.rank === 2 && x.dtype === 'float32') return transpose2d(x as tf.Tensor2D);
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1]!, perm[x.rank - 2]!];
  return tf.transpose(x, perm);
}

/**
 * Gradient of BatchMatMul with explicit transposes instead of transposeA/B flags.
 * tfjs's own gradient calls matMul(dy, b, false, true) and friends; on the wasm backend those
 * flags are 12–40× slower than transposing first (measured: bench/kernels.ts).
 *   y = op(a)·op(b)
 *   (F,F): da = dy·bᵀ    db = aᵀ·dy
 *   (F,T): da = dy·b     db = dyᵀ·a
 *   (T,F): da = b·dyᵀ    db = a·dy
 *   (T,T): da = bᵀ·dyᵀ   db = dyᵀ·aᵀ
 */
export function registerMatMulGradient(): void {
  tf.unregisterGradient(tf.BatchMatMul);
  tf.registerGradient({
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      const g = dy as tf.Tensor;
      const T = transposeLast;
      if (!transposeA && !transposeB) return { a: () => tf.matMul(g, T(b)), b: () => tf.matMul(T(a), g) };
      if (!transposeA && transposeB) return { a: () => tf.matMul(g, b), b: () => tf.matMul(T(g), a) };
      if (transposeA && !transposeB) return { a: () => tf.matMul(b, T(g)), b: () => tf.matMul(a, g) };
      return { a: () => tf.matMul(T(b), T(g)), b: () => tf.matMul(T(g), T(a)) };
    },
  });
}
