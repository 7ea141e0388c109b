/**
 * The functions gpu.js compiles into shaders (WGSL on WebGPU, JavaScript in its CPU mode): plain loops
 * and Math only, `this.thread` for the output index and `this.constants` for sizes. Arrays are flat,
 * row-major. `act` 0: relu, 1: gelu (tanh form), 2: swiglu, -1: none. With swiglu the pre-activation
 * rows are gate | up side by side (`stride` 2·d_ff): h[i] = silu(a[i])·a[d_ff + i], silu(v) = v·σ(v).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */

// ---- the expert FFN (same equations as ffn.ts) ----

/** A = X·W1 + b1 — output [n, m] */
export function linear(this: any, x: Float32Array, w: Float32Array, b: Float32Array): number {
  let s = b[this.thread.x]!;
  for (let i = 0; i < this.constants.k; i++)
    s += x[this.thread.y * this.constants.k + i]! * w[i * this.constants.m + this.thread.x]!;
  return s;
}

/** O = act(A)·W2 + b2, A's rows `stride` apart — output [n, m] */
export function actLinear(this: any, a: Float32Array, w: Float32Array, b: Float32Array): number {
  let s = b[this.thread.x]!;
  for (let i = 0; i < this.constants.k; i++) {
    const v = a[this.thread.y * this.constants.stride + i]!;
    let h = Math.max(v, 0);
    if (this.constants.act === 1) h = 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    if (this.constants.act === 2)
      h = (v / (1 + Math.exp(-v))) * a[this.thread.y * this.constants.stride + this.constants.k + i]!;
    s += h * w[i * this.constants.m + this.thread.x]!;
  }
  return s;
}

/** out[i][j] = Σ_r act(a[r][i])·g[r][j], a's rows `stride` apart (act −1: plain aᵀ·g) — output [p, q] */
export function transposedProduct(this: any, a: Float32Array, g: Float32Array): number {
  let s = 0;
  for (let r = 0; r < this.constants.n; r++) {
    const v = a[r * this.constants.stride + this.thread.y]!;
    let h = v;
    if (this.constants.act === 0) h = Math.max(v, 0);
    if (this.constants.act === 1) h = 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    if (this.constants.act === 2)
      h = (v / (1 + Math.exp(-v))) * a[r * this.constants.stride + this.constants.p + this.thread.y]!;
    s += h * g[r * this.constants.q + this.thread.x]!;
  }
  return s;
}

/** Σ_rows g — output [q] */
export function columnSum(this: any, g: Float32Array): number {
  let s = 0;
  for (let r = 0; r < this.constants.n; r++) s += g[r * this.constants.q + this.thread.x]!;
  return s;
}

/**
 * dA[r][i] = dH[r][i] · act′(a[r][i]), dH[r][i] = Σ_j g[r][j]·w2[i][j] — output [n, p]. swiglu (p =
 * 2·d_ff, `h` = d_ff): column i < h is the gate's, dH·a_u·silu′(a_g); column h + i the up's, dH·silu(a_g).
 */
export function gradPreActivation(this: any, g: Float32Array, w2: Float32Array, a: Float32Array): number {
  let hidden = this.thread.x;
  if (this.constants.act === 2 && hidden >= this.constants.h) hidden = this.thread.x - this.constants.h;
  let s = 0;
  for (let j = 0; j < this.constants.q; j++)
    s += g[this.thread.y * this.constants.q + j]! * w2[hidden * this.constants.q + j]!;
  const v = a[this.thread.y * this.constants.p + this.thread.x]!;
  let d = 0;
  if (v > 0) d = 1;
  if (this.constants.act === 1) {
    const t = Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v));
    d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v);
  }
  if (this.constants.act === 2) {
    const gate = a[this.thread.y * this.constants.p + hidden]!;
    const sg = 1 / (1 + Math.exp(-gate));
    if (this.thread.x < this.constants.h)
      d = a[this.thread.y * this.constants.p + this.constants.h + hidden]! * sg * (1 + gate * (1 - sg));
    else d = gate * sg;
  }
  return s * d;
}

/** dX[r][j] = Σ_i dA[r][i]·w1[j][i] — output [n, q] */
export function productTransposed(this: any, da: Float32Array, w1: Float32Array): number {
  let s = 0;
  for (let i = 0; i < this.constants.p; i++)
    s += da[this.thread.y * this.constants.p + i]! * w1[this.thread.x * this.constants.p + i]!;
  return s;
}

// ---- element-wise: uploads, gradient accumulation, AdamW (optim/adamw.ts), Σg² ----

/** a copy of x: how an array becomes a GPU-resident buffer */
export function copy(this: any, x: Float32Array): number {
  return x[this.thread.x]!;
}

export function add(this: any, a: Float32Array, b: Float32Array): number {
  return a[this.thread.x]! + b[this.thread.x]!;
}

// h = [clip, β1, β2, lr, 1−β1ᵗ, 1−β2ᵗ, ε, λ] (an array: gpu.js would type a first scalar 1 as an integer)

/** m ← β1·m + (1−β1)·clip·g */
export function adamMoment(this: any, m: Float32Array, g: Float32Array, h: Float32Array): number {
  return h[1]! * m[this.thread.x]! + (1 - h[1]!) * (g[this.thread.x]! * h[0]!);
}

/** v ← β2·v + (1−β2)·(clip·g)² */
export function adamSecondMoment(this: any, v: Float32Array, g: Float32Array, h: Float32Array): number {
  const gi = g[this.thread.x]! * h[0]!;
  return h[2]! * v[this.thread.x]! + (1 - h[2]!) * gi * gi;
}

/** θ ← θ − lr·( m̂ / (√v̂ + ε) + λ·θ ), m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ) */
export function adamUpdate(this: any, w: Float32Array, m: Float32Array, v: Float32Array, h: Float32Array): number {
  const wi = w[this.thread.x]!;
  return wi - h[3]! * (m[this.thread.x]! / h[4]! / (Math.sqrt(v[this.thread.x]! / h[5]!) + h[6]!) + h[7]! * wi);
}

/** Σ g² over chunk `thread.x` of `constants.chunk` values — output [⌈size/chunk⌉] */
export function chunkSquares(this: any, g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < this.constants.chunk; i++) {
    const j = this.thread.x * this.constants.chunk + i;
    if (j < this.constants.size) s += g[j]! * g[j]!;
  }
  return s;
}
