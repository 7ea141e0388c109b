import tf from '../util/tfjs.cjs';
import { onHost, readView, tensorFrom } from './view.js';

let scratch = new Float32Array(0);

/**
 * xᵀ for a 2-D float32 tensor, as a cache-blocked copy in JavaScript from a view of the wasm heap.
 * tfjs-wasm's Transpose takes ~2.3 ms for [2048, 128] here; this takes well under half of that, and
 * the weight gradients (xᵀ·dy) need one per matmul.
 */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  if (!onHost()) return tf.transpose(x); // on a GPU the backend's own transpose, no readback
  const [r, c] = x.shape;
  if (scratch.length < r * c) scratch = new Float32Array(r * c);
  const src = readView(x);
  const out = scratch;
  const B = 16;
  for (let i0 = 0; i0 < r; i0 += B) {
    const im = Math.min(r, i0 + B);
    for (let j0 = 0; j0 < c; j0 += B) {
      const jm = Math.min(c, j0 + B);
      for (let i = i0; i < im; i++) {
        const row = i * c;
        for (let j = j0; j < jm; j++) out[j * r + i] = src[row + j]!;
      }
    }
  }
  return tensorFrom(out.subarray(0, r * c), [c, r]) as tf.Tensor2D;
}
