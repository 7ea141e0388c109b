import tf from '../util/tfjs.cjs';
import { transpose2d } from './transpose.js';

/** Swaps the last two axes (explicitly: on wasm this is far faster than matMul's transpose flags). */
export function transposeLast(x: tf.Tensor): tf.Tensor {
  if (x.rank === 2 && x.dtype === 'float32') return transpose2d(x as tf.Tensor2D);
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1]!, perm[x.rank - 2]!];
  return tf.transpose(x, perm);
}

/**
 * Sums a gradient over the batch axes its input was broadcast along (absent, or of size 1), so that
 * it has the input's shape: matMul([1, m, k], [B, k, n]) gives da of [B, m, k] before this.
 */
export function reduceToShape(g: tf.Tensor, shape: number[]): tf.Tensor {
  if (g.rank === shape.length && g.shape.every((s, i) => s === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank - 2; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return tf.sum(g, axes).reshape(shape);
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
 * Broadcast batch dimensions are summed back to each input's shape (tfjs's own gradient does not).
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
      const fit = (da: () => tf.Tensor, db: () => tf.Tensor) => ({
        a: () => reduceToShape(da(), a.shape), b: () => reduceToShape(db(), b.shape),
      });
      if (!transposeA && !transposeB) return fit(() => tf.matMul(g, T(b)), () => tf.matMul(T(a), g));
      if (!transposeA && transposeB) return fit(() => tf.matMul(g, b), () => tf.matMul(T(g), a));
      if (transposeA && !transposeB) return fit(() => tf.matMul(b, T(g)), () => tf.matMul(a, g));
      return fit(() => tf.matMul(T(b), T(g)), () => tf.matMul(T(g), T(a)));
    },
  });
}
