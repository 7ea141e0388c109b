/**
 * The expert FFN as gpu.js kernels (`parallel.backend: gpujs`): WebGPU on Dawn when an adapter exists,
 * else gpu.js's CPU mode. Same equations as ffn.ts:
 *   forward   A = X·W1 + b1,  O = act(A)·W2 + b2
 *   backward  dW2 = act(A)ᵀ·G,  db2 = Σ_rows G,  dA = (G·W2ᵀ) ⊙ act′(A),  dW1 = Xᵀ·dA,  db1 = Σ_rows dA,  dX = dA·W1ᵀ
 * gpu.js compiles a kernel per output size, so rows come in power-of-two buckets (zero rows padded)
 * and each bucket's seven kernels are compiled once and kept.
 */
import type { Activation } from './ffn.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Kernel = ((...args: Float32Array[]) => any) & { setOutput(o: number[]): Kernel; setConstants(c: Record<string, number>): Kernel };
interface GpuLike {
  createKernel(fn: (...args: any[]) => number): Kernel;
  mode: string;
  destroy?: () => void;
}

// gpu.js parses these functions' source into shaders: plain loops and Math only, `this.thread` and
// `this.constants` for indices and sizes. `act` 0: relu, 1: gelu (tanh form).
function linear(this: any, x: Float32Array, w: Float32Array, b: Float32Array): number {
  let s = b[this.thread.x]!;
  for (let i = 0; i < this.constants.k; i++) s += x[this.thread.y * this.constants.k + i]! * w[i * this.constants.m + this.thread.x]!;
  return s;
}

function actLinear(this: any, a: Float32Array, w: Float32Array, b: Float32Array): number {
  let s = b[this.thread.x]!;
  for (let i = 0; i < this.constants.k; i++) {
    const v = a[this.thread.y * this.constants.k + i]!;
    let h = Math.max(v, 0);
    if (this.constants.act > 0) h = 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    s += h * w[i * this.constants.m + this.thread.x]!;
  }
  return s;
}

/** out[i][j] = Σ_r act(a[r][i])·g[r][j] (act off: plain aᵀ·g) — output [p, q] */
function transposedProduct(this: any, a: Float32Array, g: Float32Array): number {
  let s = 0;
  for (let r = 0; r < this.constants.n; r++) {
    const v = a[r * this.constants.p + this.thread.y]!;
    let h = v;
    if (this.constants.act === 0) h = Math.max(v, 0);
    if (this.constants.act === 1) h = 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    s += h * g[r * this.constants.q + this.thread.x]!;
  }
  return s;
}

function columnSum(this: any, g: Float32Array): number {
  let s = 0;
  for (let r = 0; r < this.constants.n; r++) s += g[r * this.constants.q + this.thread.x]!;
  return s;
}

/** dA[r][i] = (Σ_j g[r][j]·w2[i][j]) · act′(a[r][i]) — output [n, p] */
function gradPreActivation(this: any, g: Float32Array, w2: Float32Array, a: Float32Array): number {
  let s = 0;
  for (let j = 0; j < this.constants.q; j++) s += g[this.thread.y * this.constants.q + j]! * w2[this.thread.x * this.constants.q + j]!;
  const v = a[this.thread.y * this.constants.p + this.thread.x]!;
  let d = 0;
  if (v > 0) d = 1;
  if (this.constants.act > 0) {
    const t = Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v));
    d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v);
  }
  return s * d;
}

/** dX[r][j] = Σ_i dA[r][i]·w1[j][i] — output [n, q] */
function productTransposed(this: any, da: Float32Array, w1: Float32Array): number {
  let s = 0;
  for (let i = 0; i < this.constants.p; i++) s += da[this.thread.y * this.constants.p + i]! * w1[this.thread.x * this.constants.p + i]!;
  return s;
}

const flat = (out: any, size: number): Float32Array => {
  if (out instanceof Float32Array) return out;
  const res = new Float32Array(size);
  let at = 0;
  for (const row of out as Float32Array[]) {
    res.set(row, at);
    at += row.length;
  }
  return res;
};

export interface GpuJsWeights {
  w1: Float32Array; // [d, d_ff]
  b1: Float32Array;
  w2: Float32Array; // [d_ff, d]
  b2: Float32Array;
}

export class GpuJsExperts {
  private readonly kernels = new Map<number, Record<string, Kernel>>();
  private readonly act: number;

  constructor(private readonly gpu: GpuLike, private readonly d: number, private readonly dff: number, act: Activation) {
    this.act = act === 'gelu' ? 1 : 0;
  }

  get mode(): string {
    return this.gpu.mode;
  }

  /** The seven kernels for n rows, compiled on first use. */
  private forRows(n: number): Record<string, Kernel> {
    let k = this.kernels.get(n);
    if (k) return k;
    const { d, dff, act } = this;
    const make = (fn: (...a: any[]) => number, output: number[], constants: Record<string, number>) => this.gpu.createKernel(fn).setOutput(output).setConstants(constants);
    k = {
      a: make(linear, [dff, n], { k: d, m: dff }),
      o: make(actLinear, [d, n], { k: dff, m: d, act }),
      dw2: make(transposedProduct, [d, dff], { n, p: dff, q: d, act }),
      dw1: make(transposedProduct, [dff, d], { n, p: d, q: dff, act: -1 }),
      db2: make(columnSum, [d], { n, q: d }),
      db1: make(columnSum, [dff], { n, q: dff }),
      da: make(gradPreActivation, [dff, n], { p: dff, q: d, act }),
      dx: make(productTransposed, [d, n], { p: dff, q: d }),
    };
    this.kernels.set(n, k);
    return k;
  }

  /** Rows computed for n real rows: the next power of two, at least 16. */
  bucket(n: number): number {
    return Math.max(16, 2 ** Math.ceil(Math.log2(n)));
  }

  async forward(x: Float32Array, n: number, w: GpuJsWeights): Promise<{ o: Float32Array; a: Float32Array }> {
    const k = this.forRows(n);
    const a = flat(await k.a!(x, w.w1, w.b1), n * this.dff);
    const o = flat(await k.o!(a, w.w2, w.b2), n * this.d);
    return { o, a };
  }

  async backward(x: Float32Array, a: Float32Array, g: Float32Array, n: number, w: GpuJsWeights): Promise<GpuJsWeights & { dx: Float32Array }> {
    const k = this.forRows(n);
    const da = flat(await k.da!(g, w.w2, a), n * this.dff);
    const [w2, b2, w1, b1, dx] = await Promise.all([k.dw2!(a, g), k.db2!(g), k.dw1!(x, da), k.db1!(da), k.dx!(da, w.w1)]);
    return {
      w2: flat(w2, this.dff * this.d), b2: flat(b2, this.d), w1: flat(w1, this.d * this.dff), b1: flat(b1, this.dff), dx: flat(dx, n * this.d),
    };
  }

  dispose(): void {
    this.gpu.destroy?.();
  }
}

/** gpu.js on WebGPU (Dawn) when an adapter answers, else its CPU mode; the mode is reported. */
export async function openGpuJs(d: number, dff: number, act: Activation): Promise<GpuJsExperts> {
  const { openDawn } = await import('../backend/dawn.js');
  const dawn = await openDawn().catch(() => undefined);
  if (dawn) (globalThis as { navigator?: unknown }).navigator = { gpu: dawn.gpu };
  const { GPU } = (await import('gpu.js')) as unknown as { GPU: (new (o: { mode: string }) => GpuLike) & { isWebGPUAvailable(): Promise<boolean> } };
  const webgpu = dawn !== undefined && (await GPU.isWebGPUAvailable());
  return new GpuJsExperts(new GPU({ mode: webgpu ? 'webgpu' : 'cpu' }), d, dff, act);
}
