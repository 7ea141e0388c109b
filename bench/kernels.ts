/**
 * The kernel choices behind the coordinator, measured in one run on this machine's tfjs-wasm:
 *   - matMul backward with transpose flags (tfjs's own gradient) vs explicit transposes (ours)
 *   - attention: the tfjs composition (batched matMul, mask, softmax) vs the fused causal kernel
 *   - expert-sized 2-D matmul GFLOP/s
 *   npx tsx bench/kernels.ts
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/init.js';
import { causalAttention } from '../src/model/attention.js';

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
console.log(`matMul backward [2048x128]·[128x384]: transpose flags ${flags.toFixed(1)} ms, explicit transposes ${explicit.toFixed(1)} ms (${(flags / explicit).toFixed(1)}x)`);

// 2. attention forward+backward, B=32 T=64 H=4 hd=32 (the tiny-shakespeare shapes)
const B = 32, T = 64, H = 4, hd = 32, d = H * hd;
const q = fresh([B * T, d]) as tf.Tensor2D, k = fresh([B * T, d]) as tf.Tensor2D, v = fresh([B * T, d]) as tf.Tensor2D, g = fresh([B * T, d]);
function composed(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): tf.Tensor {
  const split = (x: tf.Tensor) => x.reshape([B, T, H, hd]).transpose([0, 2, 1, 3]);
  const s = tf.matMul(split(q), tf.transpose(split(k), [0, 1, 3, 2])).mul(1 / Math.sqrt(hd));
  const mask = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
  return tf.matMul(tf.softmax(s.add(tf.sub(1, mask).mul(-1e9))), split(v)).transpose([0, 2, 1, 3]).reshape([B * T, d]);
}
const fusedFn = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => causalAttention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, { batch: B, seqLen: T, heads: H });
for (const [name, f] of [['tfjs composition', composed], ['fused causal kernel', fusedFn]] as const) {
  const fwd = time(5, () => tf.tidy(() => { f(q, k, v).dataSync(); }));
  const both = time(5, () => tf.tidy(() => { tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => f(x, y, z))([q, k, v], g).forEach((t) => t.dataSync()); }));
  console.log(`attention B=${B} T=${T} H=${H} hd=${hd} ${name}: forward ${fwd.toFixed(1)} ms, forward+backward ${both.toFixed(1)} ms`);
}

// 3. expert-sized matmul: 640 tokens (capacity 1.25·2048/4) × [128, 256]
const x = fresh([640, 128]) as tf.Tensor2D, w = fresh([128, 256]) as tf.Tensor2D;
const mm = time(20, () => tf.tidy(() => { tf.matMul(x, w).dataSync(); }));
console.log(`expert matmul [640x128]·[128x256]: ${mm.toFixed(2)} ms, ${((2 * 640 * 128 * 256) / mm / 1e6).toFixed(1)} GFLOP/s`);
