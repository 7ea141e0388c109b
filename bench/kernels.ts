/**
 * The kernel choices behind the coordinator, measured in one run on this machine's tfjs-wasm:
 *   - matMul backward with transpose flags (tfjs's own gradient) vs explicit transposes (ours)
 *   - attention: the tfjs composition (batched matMul, mask, softmax) vs the fused causal kernel
 *   - expert-sized 2-D matmul GFLOP/s
 *   - scattering token rows into slots: set(subarray) per row vs the float64 row copier
 *   npx tsx bench/kernels.ts
 */
import tf from '../src/core/util/tfjs.cjs';
import { initBackend } from '../src/core/backend/init.js';
import { transpose2d } from '../src/core/backend/transpose.js';
import { causalAttention } from '../src/core/model/attention.js';
import { rowCopier } from '../src/core/comm/rows.js';

await initBackend('wasm');

function time(reps: number, f: () => void): number {
  for (let i = 0; i < 2; i++) f();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  return (performance.now() - t0) / reps;
}
const fresh = (shape: number[]) => tf.randomNormal(shape).add(0); // op output, as in training

// 1. matMul backward: y = a·b with a [2048,128], b [128,384]
const a = fresh([2048, 128]) as tf.Tensor2D, b = fresh([128, 384]) as tf.Tensor2D, dy = fresh([2048, 384]) as tf.Tensor2D;
const flags = time(5, () => tf.tidy(() => { tf.matMul(dy, b, false, true).dataSync(); tf.matMul(a, dy, true, false).dataSync(); }));
const explicit = time(5, () => tf.tidy(() => { tf.matMul(dy, tf.transpose(b)).dataSync(); tf.matMul(tf.transpose(a), dy).dataSync(); }));
const ours = time(5, () => tf.tidy(() => { tf.matMul(dy, transpose2d(b)).dataSync(); tf.matMul(transpose2d(a), dy).dataSync(); }));
console.log(`matMul backward [2048x128]·[128x384]: transpose flags ${flags.toFixed(1)} ms, explicit tf.transpose ${explicit.toFixed(1)} ms (${(flags / explicit).toFixed(1)}x), explicit JS transpose2d ${ours.toFixed(1)} ms (${(flags / ours).toFixed(1)}x)`);

// 2. attention forward+backward, B=32 T=64 H=4 hd=32 (the tiny-shakespeare shapes)
const B = 32, T = 64, H = 4, hd = 32, d = H * hd;
const qkv = fresh([B * T, 3 * d]) as tf.Tensor2D, g = fresh([B * T, d]);
function composed(qkv: tf.Tensor): tf.Tensor {
  const [q, k, v] = tf.split(qkv, 3, 1).map((x) => x.reshape([B, T, H, hd]).transpose([0, 2, 1, 3]));
  const s = tf.matMul(q!, tf.transpose(k!, [0, 1, 3, 2])).mul(1 / Math.sqrt(hd));
  const mask = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
  return tf.matMul(tf.softmax(s.add(tf.sub(1, mask).mul(-1e9))), v!).transpose([0, 2, 1, 3]).reshape([B * T, d]);
}
const shape = { batch: B, seqLen: T, heads: H };
const flops = 4 * B * H * T * T * hd; // Q·Kᵀ and P·V, full (unmasked) count
for (const [name, f] of [
  ['tfjs composition', composed],
  ['fused kernel, JavaScript', (x: tf.Tensor) => causalAttention(x as tf.Tensor2D, shape, 'js')],
  ['fused kernel, WebAssembly SIMD', (x: tf.Tensor) => causalAttention(x as tf.Tensor2D, shape, 'wasm')],
] as const) {
  const fwd = time(5, () => tf.tidy(() => { f(qkv).dataSync(); }));
  const both = time(5, () => tf.tidy(() => { tf.grad((x: tf.Tensor) => f(x))(qkv, g).dataSync(); }));
  console.log(`attention B=${B} T=${T} H=${H} hd=${hd} ${name}: forward ${fwd.toFixed(1)} ms (${(flops / fwd / 1e6).toFixed(1)} GFLOP/s equivalent), forward+backward ${both.toFixed(1)} ms`);
}

// 3. expert-sized matmul: 640 tokens (capacity 1.25·2048/4) × [128, 256]
const x = fresh([640, 128]) as tf.Tensor2D, w = fresh([128, 256]) as tf.Tensor2D;
const mm = time(20, () => tf.tidy(() => { tf.matMul(x, w).dataSync(); }));
console.log(`expert matmul [640x128]·[128x256]: ${mm.toFixed(2)} ms, ${((2 * 640 * 128 * 256) / mm / 1e6).toFixed(1)} GFLOP/s`);

// 4. pack's inner loop: 4,096 rows of 128 floats copied to scattered slots, one `set(subarray)` per
//    row vs the float64 row copier (src/comm/rows.ts), against one memcpy of the same bytes
{
  const d = 128, n = 4096;
  const rows = new Float32Array(new SharedArrayBuffer(n * d * 4)).map((_, i) => i);
  const slots = new Float32Array(new SharedArrayBuffer(n * d * 4));
  const at = Int32Array.from({ length: n }, (_, t) => ((t * 7919) % n) * d);
  const copy = rowCopier(slots, rows, d);
  const perRowSet = time(50, () => { for (let t = 0; t < n; t++) slots.set(rows.subarray(t * d, t * d + d), at[t]!); });
  const copier = time(50, () => { for (let t = 0; t < n; t++) copy(at[t]!, t * d); });
  const memcpy = time(50, () => slots.set(rows));
  console.log(`scatter ${n} rows × ${d}: set(subarray) per row ${(perRowSet * 1000).toFixed(0)} µs, float64 row copier ${(copier * 1000).toFixed(0)} µs ` +
    `(${(perRowSet / copier).toFixed(2)}x), one memcpy ${(memcpy * 1000).toFixed(0)} µs`);
}
