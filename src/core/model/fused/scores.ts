import type tf from '../../util/tfjs.cjs';
import type { Config } from '../../config/defaults.js';
import { fusedKernels } from '../kernels/fused-wasm.js';

type Moe = Config['moe'];

/**
 * The router's scores and their backward passes on flat [N, E] arrays, for the fused Switch layer
 * (switch-combine.ts, router-losses.ts); the same functions as router/gates.ts:
 *   softmax  s_{t,i} = e^{z_{t,i}} / Σ_j e^{z_{t,j}}       ∂z_{t,i} = s_{t,i} (∂s_{t,i} − Σ_j ∂s_{t,j} s_{t,j})
 *   sigmoid  s_{t,i} = σ(z_{t,i})                           ∂z_{t,i} = ∂s_{t,i} s_{t,i} (1 − s_{t,i})
 *   hash     s_{t,i} = 1/E, no gradient
 */
export function scores(z: Float32Array, N: number, E: number, moe: Moe): Float32Array {
  const s = new Float32Array(N * E);
  if (moe.router === 'hash') return s.fill(1 / E);
  if (moe.score === 'sigmoid') {
    for (let i = 0; i < s.length; i++) s[i] = 1 / (1 + Math.exp(-z[i]!));
    return s;
  }
  for (let t = 0; t < N; t++) {
    const o = t * E;
    let m = -Infinity;
    for (let e = 0; e < E; e++) m = Math.max(m, z[o + e]!);
    let sum = 0;
    for (let e = 0; e < E; e++) sum += (s[o + e] = Math.exp(z[o + e]! - m));
    for (let e = 0; e < E; e++) s[o + e]! /= sum;
  }
  return s;
}

/** ∂L/∂z from ∂L/∂s (in place into ds, which is returned); zeros for a hash router. */
export function scoresBackward(ds: Float32Array, s: Float32Array, N: number, E: number, moe: Moe): Float32Array {
  if (moe.router === 'hash') return ds.fill(0);
  if (moe.score === 'sigmoid') {
    for (let i = 0; i < ds.length; i++) ds[i]! *= s[i]! * (1 - s[i]!);
    return ds;
  }
  for (let t = 0; t < N; t++) {
    const o = t * E;
    let dot = 0;
    for (let e = 0; e < E; e++) dot += ds[o + e]! * s[o + e]!;
    for (let e = 0; e < E; e++) ds[o + e] = s[o + e]! * (ds[o + e]! - dot);
  }
  return ds;
}

/** The balance losses' P_i: s' = s / Σ_j s_j for sigmoid scores, s itself otherwise (a new array or s). */
export function normalised(s: Float32Array, N: number, E: number, moe: Moe): Float32Array {
  if (moe.score !== 'sigmoid' || moe.router === 'hash') return s;
  const out = new Float32Array(s.length);
  for (let t = 0; t < N; t++) {
    let sum = 0;
    for (let e = 0; e < E; e++) sum += s[t * E + e]!;
    for (let e = 0; e < E; e++) out[t * E + e] = s[t * E + e]! / sum;
  }
  return out;
}

/** scores() of a logits tensor [N, E] on the fused kernels (kernels/router.c), as a new array. */
export function scoresOf(logits: tf.Tensor2D, moe: Moe): Float32Array {
  const [N, E] = logits.shape;
  if (moe.router === 'hash') return new Float32Array(N * E).fill(1 / E);
  const k = fusedKernels()!.reset();
  const s = k.alloc(N * E);
  k.k.router_scores(k.ptr(logits), s, 0, N, E, moe.score === 'sigmoid' ? 1 : 0);
  return k.view(s, N * E).slice();
}
