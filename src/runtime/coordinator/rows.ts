import tf from '../../core/util/tfjs.cjs';
import { readView } from '../../core/backend/view.js';

/** Splits [N·k, d] token-choice rows into k tensors of [N, d]. */
export function perChoice(rows: Float32Array, k: number, d: number): tf.Tensor2D[] {
  const N = rows.length / k / d;
  if (k === 1) return [tf.tensor2d(rows, [N, d])]; // top-1: already token-major
  return Array.from({ length: k }, (_, c) => {
    const out = new Float32Array(N * d);
    for (let t = 0; t < N; t++) out.set(rows.subarray((t * k + c) * d, (t * k + c + 1) * d), t * d);
    return tf.tensor2d(out, [N, d]);
  });
}

/** Interleaves k gradients of [N, d] back into [N·k, d] token-choice rows. */
export function interleave(grads: tf.Tensor[], d: number): Float32Array {
  const k = grads.length;
  const data = grads.map(readView); // views: the caller packs them before any other tfjs op
  if (k === 1) return data[0]!;
  const N = data[0]!.length / d;
  const out = new Float32Array(N * k * d);
  for (let t = 0; t < N; t++)
    for (let c = 0; c < k; c++) out.set(data[c]!.subarray(t * d, (t + 1) * d), (t * k + c) * d);
  return out;
}

/** Marks a promise as handled now (its rejection is rethrown where it is awaited). */
export function early<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}
