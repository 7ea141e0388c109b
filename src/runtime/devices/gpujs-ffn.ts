/**
 * The expert FFN as gpu.js kernels (`parallel.backend: gpujs`). Same equations as ffn.ts:
 *   forward   A = X·W1 + b1,  O = act(A)·W2 + b2   (swiglu: A = [A_g | A_u], act(A) = silu(A_g) ⊙ A_u)
 *   backward  dW2 = act(A)ᵀ·G,  db2 = Σ_rows G,  dA = (G·W2ᵀ) ⊙ act′(A),
 *             dW1 = Xᵀ·dA,  db1 = Σ_rows dA,  dX = dA·W1ᵀ
 * Operands are GPU-resident on WebGPU (gpujs-runtime.ts): A and dA never leave the GPU, the weight
 * gradients go straight to the store's accumulators. gpu.js compiles a kernel per output size, so
 * rows come in power-of-two buckets (zero rows padded) and each bucket's kernels compile once.
 */
import type { Activation } from './ffn.js';
import { actLinear, columnSum, gradPreActivation, linear, productTransposed,
  transposedProduct } from './gpujs-kernels.js';
import type { GpuJsRuntime, Operand } from './gpujs-runtime.js';

export interface GpuJsWeights<T = Operand> {
  w1: T; // [d, d_ff] (swiglu [d, 2·d_ff])
  b1: T; // [d_ff] (swiglu [2·d_ff])
  w2: T; // [d_ff, d]
  b2: T; // [d]
}

export class GpuJsExperts {
  private readonly act: number;

  constructor(readonly runtime: GpuJsRuntime, private readonly d: number, private readonly dff: number,
    act: Activation) {
    this.act = act === 'swiglu' ? 2 : act === 'gelu' ? 1 : 0;
  }

  get mode(): string {
    return this.runtime.mode;
  }

  /** this bucket's kernels (n rows), compiled on first use */
  private k(name: 'a' | 'o' | 'dw2' | 'dw1' | 'db2' | 'db1' | 'da' | 'dx', n: number) {
    const { d, dff, act, runtime } = this;
    const up = act === 2 ? 2 * dff : dff; // swiglu: W1 is gate | up, A has 2·d_ff columns
    const key = `ffn.${name}/${n}/${d}/${dff}/${act}`;
    switch (name) {
      case 'a': return runtime.kernel(key, linear, [up, n], { k: d, m: up });
      case 'o': return runtime.kernel(key, actLinear, [d, n], { k: dff, m: d, act, stride: up });
      case 'dw2': return runtime.kernel(key, transposedProduct, [d, dff], { n, p: dff, q: d, act, stride: up });
      case 'dw1': return runtime.kernel(key, transposedProduct, [up, d], { n, p: d, q: up, act: -1, stride: d });
      case 'db2': return runtime.kernel(key, columnSum, [d], { n, q: d });
      case 'db1': return runtime.kernel(key, columnSum, [up], { n, q: up });
      case 'da': return runtime.kernel(key, gradPreActivation, [up, n], { p: up, q: d, act, h: dff });
      case 'dx': return runtime.kernel(key, productTransposed, [d, n], { p: up, q: d });
    }
  }

  /** O and A (kept for backward) for n rows of x [n, d]; the caller owns both. */
  async forward(x: Operand, n: number, w: GpuJsWeights): Promise<{ o: Operand; a: Operand }> {
    const a = await this.runtime.run(this.k('a', n), x, w.w1, w.b1);
    const o = await this.runtime.run(this.k('o', n), a, w.w2, w.b2);
    return { o, a };
  }

  /** The weight gradients and dX for upstream g [n, d]; the caller owns every result. */
  async backward(x: Operand, a: Operand, g: Operand, n: number, w: GpuJsWeights): Promise<GpuJsWeights
    & { dx: Operand }> {
    const r = this.runtime;
    const da = await r.run(this.k('da', n), g, w.w2, a);
    const [w2, b2, w1, b1, dx] = await Promise.all([
      r.run(this.k('dw2', n), a, g), r.run(this.k('db2', n), g), r.run(this.k('dw1', n), x, da),
      r.run(this.k('db1', n), da), r.run(this.k('dx', n), da, w.w1),
    ]);
    r.release(da);
    return { w1, b1, w2, b2, dx };
  }
}
