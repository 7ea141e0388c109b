import { readFileSync } from 'node:fs';

/**
 * Loader for fused.wasm (WebAssembly SIMD, built from gemm.c, norm.c, act.c and xent.c by
 * scripts/build-kernels.sh): the matmuls, layer norm, activations, cross-entropy and embedding of the
 * fused kernels (parallel.kernels: fused). Pointers are byte offsets into the module's own memory.
 * Each operation lays out its operands from the heap base again (an arena reset per call), copies its
 * inputs in, runs, and copies its outputs out: nothing persists in this memory between calls.
 */
export interface FusedExports {
  gemm(A: number, sa: number, sr: number, B: number, C: number, M: number, R: number, N: number, bias: number, acc: number): void;
  gemm_nt(G: number, W: number, C: number, M: number, N: number, K: number, scratch: number, acc: number): void;
  col_sum(G: number, out: number, M: number, N: number, acc: number): void;
  layernorm_fwd(x: number, g: number, b: number, y: number, mean: number, rstd: number, N: number, C: number, eps: number): void;
  layernorm_bwd(x: number, g: number, mean: number, rstd: number, dy: number, dx: number, dg: number, db: number, N: number, C: number): void;
  act_fwd(kind: number, a: number, h: number, N: number, F: number): void;
  act_bwd(kind: number, a: number, dh: number, da: number, N: number, F: number): void;
  add_masked(h: number, o: number, m: number, y: number, n: number): void;
  mul(a: number, b: number, y: number, n: number): void;
  softmax_xent(z: number, targets: number, G: number, N: number, V: number): number;
  embed_fwd(tokens: number, wte: number, wpe: number, h: number, B: number, T: number, d: number): void;
  embed_bwd(tokens: number, dh: number, dwte: number, dwpe: number, B: number, T: number, d: number): void;
  __heap_base: WebAssembly.Global;
}

/** The module and a bump allocator over its memory, reset by each operation. */
export class FusedKernels {
  private at: number;
  private f32View: Float32Array;
  private i32View: Int32Array;

  constructor(readonly k: FusedExports, private readonly memory: WebAssembly.Memory) {
    this.at = this.base;
    this.f32View = new Float32Array(memory.buffer);
    this.i32View = new Int32Array(memory.buffer);
  }

  private get base(): number {
    return Math.ceil(Number(this.k.__heap_base.value) / 16) * 16;
  }

  /** Starts an operation's layout from the heap base. */
  reset(): this {
    this.at = this.base;
    return this;
  }

  /** Room for n floats (or ints), 16-byte aligned; grows the memory (views taken before are then stale). */
  alloc(n: number): number {
    const p = this.at;
    this.at += Math.ceil((n * 4) / 16) * 16;
    const need = this.at - this.memory.buffer.byteLength;
    if (need > 0) this.memory.grow(Math.ceil(need / 65536));
    return p;
  }

  get f32(): Float32Array {
    if (this.f32View.buffer !== this.memory.buffer) this.f32View = new Float32Array(this.memory.buffer);
    return this.f32View;
  }

  get i32(): Int32Array {
    if (this.i32View.buffer !== this.memory.buffer) this.i32View = new Int32Array(this.memory.buffer);
    return this.i32View;
  }

  /** Copies values in; returns their pointer. */
  put(values: Float32Array): number {
    const p = this.alloc(values.length);
    this.f32.set(values, p >> 2);
    return p;
  }

  putInts(values: Int32Array): number {
    const p = this.alloc(values.length);
    this.i32.set(values, p >> 2);
    return p;
  }

  /** n zeros; returns their pointer. */
  zeros(n: number): number {
    const p = this.alloc(n);
    this.f32.fill(0, p >> 2, (p >> 2) + n);
    return p;
  }

  /** A view of n floats at p, valid until the next alloc or operation. */
  view(p: number, n: number): Float32Array {
    return this.f32.subarray(p >> 2, (p >> 2) + n);
  }
}

let loaded: FusedKernels | null | undefined;

/** The kernels, or null where WebAssembly SIMD is missing (the tfjs path then runs). */
export function fusedKernels(): FusedKernels | null {
  if (loaded !== undefined) return loaded;
  try {
    const bytes = readFileSync(new URL('./fused.wasm', import.meta.url));
    const memory = new WebAssembly.Memory({ initial: 64 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    loaded = new FusedKernels(instance.exports as unknown as FusedExports, memory);
  } catch {
    loaded = null;
  }
  return loaded;
}
