import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import tf from '../../util/tfjs.cjs';

/**
 * Loader for fused.wasm (WebAssembly SIMD, built from gemm.c, norm.c, act.c, xent.c, attn.c, combine.c and router.c by
 * scripts/build-kernels.sh): the matmuls, layer norm, activations, cross-entropy, embedding, attention and
 * Switch combine of the
 * fused kernels (parallel.kernels: fused). Pointers are byte offsets into tfjs's wasm heap.
 */
export interface FusedExports {
  gemm(
    A: number, sa: number, sr: number, B: number, C: number, M: number, R: number, N: number, bias: number, acc: number,
    scratch: number,
  ): void;
  gemm_nt(G: number, W: number, C: number, M: number, N: number, K: number, scratch: number, acc: number): void;
  col_sum(G: number, out: number, M: number, N: number, acc: number): void;
  layernorm_fwd(
    x: number, g: number, b: number, y: number, mean: number, rstd: number, N: number, C: number, eps: number,
  ): void;
  layernorm_bwd(
    x: number, g: number, mean: number, rstd: number, dy: number, dx: number, dg: number, db: number, N: number,
    C: number,
  ): void;
  act_fwd(kind: number, a: number, h: number, N: number, F: number): void;
  act_bwd(kind: number, a: number, dh: number, da: number, N: number, F: number): void;
  add_masked(h: number, o: number, m: number, y: number, n: number): void;
  mul(a: number, b: number, y: number, n: number): void;
  softmax_xent(z: number, targets: number, G: number, N: number, V: number): number;
  embed_fwd(tokens: number, wte: number, wpe: number, h: number, B: number, T: number, d: number): void;
  embed_bwd(tokens: number, dh: number, dwte: number, dwpe: number, B: number, T: number, d: number): void;
  combine_fwd(
    h: number, outs: number, coef: number, shared: number, m: number, y: number, N: number, d: number, K: number,
  ): void;
  combine_bwd(
    dy: number, m: number, outs: number, coef: number, keep: number, dM: number, dOuts: number, dG: number, N: number,
    d: number, K: number,
  ): void;
  scale(x: number, s: number, y: number, n: number): void;
  router_scores(z: number, s: number, lse: number, N: number, E: number, sigmoid: number): void;
  zloss_bwd(z: number, lse: number, k: number, dz: number, N: number, E: number): void;
  attn_fwd(qkv: number, o: number, lse: number, B: number, T: number, H: number, hd: number, scratch: number): void;
  attn_bwd(
    qkv: number, o: number, lse: number, dO: number, dqkv: number, B: number, T: number, H: number, hd: number,
    scratch: number,
  ): void;
}

/** RB in gemm.c: the reduction steps of one block, whose rows of B gemm copies into panels. */
const RB = 256;
/** Floats of scratch gemm needs for R reduction steps into N columns: B's panels, min(R, RB)·N. */
export const gemmScratch = (R: number, N: number): number => Math.min(R, RB) * N;
/** Floats of scratch gemm_nt needs for G [M, N]·W[K, N]ᵀ: Wᵀ, K·N, and its panels. */
export const gemmNtScratch = (N: number, K: number): number => K * N + gemmScratch(N, K);

interface WasmBackend {
  wasm: { asm: { memory: WebAssembly.Memory }; _malloc(bytes: number): number; _free(p: number): void };
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): { dataId: object; shape: number[]; dtype: 'float32' };
}

/**
 * The module, instantiated on the tfjs wasm backend's own memory: the kernels read and write tensors
 * where they are (no copies), and keep their temporaries in a scratch arena malloc'd from that heap,
 * reset by each operation. The module has no data segments and uses no shadow stack (the build keeps
 * it so), so nothing of tfjs's heap is touched but what the operations are given.
 */
export class FusedKernels {
  private blocks: { raw: number; p: number; bytes: number }[] = [];
  private at = 0;
  private used = 0;
  private f32View: Float32Array;
  private i32View: Int32Array;

  constructor(readonly k: FusedExports, private readonly backend: WasmBackend) {
    this.f32View = new Float32Array(this.memory.buffer);
    this.i32View = new Int32Array(this.memory.buffer);
  }

  private get memory(): WebAssembly.Memory {
    return this.backend.wasm.asm.memory;
  }

  /** Starts an operation's temporaries; what the last one used is one block from now on. */
  reset(): this {
    if (this.blocks.length > 1) {
      const total = this.blocks.reduce((a, b) => a + b.bytes, 0);
      for (const b of this.blocks) this.backend.wasm._free(b.raw);
      this.blocks = [];
      this.newBlock(total);
    }
    this.at = 0;
    this.used = 0;
    return this;
  }

  private newBlock(bytes: number): { raw: number; p: number; bytes: number } {
    const raw = this.backend.wasm._malloc(bytes + 16);
    const block = { raw, p: Math.ceil(raw / 16) * 16, bytes };
    this.blocks.push(block);
    return block;
  }

  /** Room for n floats (or ints) in the arena, 16-byte aligned, valid until the next reset. */
  alloc(n: number): number {
    const bytes = Math.ceil((n * 4) / 16) * 16;
    let block = this.blocks[this.at];
    if (block && this.used + bytes > block.bytes) {
      block = this.blocks[++this.at];
      this.used = 0;
    }
    block ??= this.newBlock(Math.max(bytes, 2 * (this.blocks.at(-1)?.bytes ?? 1 << 19)));
    const p = block.p + this.used;
    this.used += bytes;
    return p;
  }

  /** Room for n floats on the heap that outlives operations (until free). */
  malloc(n: number): number {
    return this.backend.wasm._malloc(n * 4);
  }

  free(p: number): void {
    this.backend.wasm._free(p);
  }

  /** Where a float32 or int32 tensor's values are. */
  ptr(t: tf.Tensor): number {
    return this.backend.dataIdMap.get(t.dataId)!.memoryOffset;
  }

  /** A new float32 tensor of this shape and where its values go (uninitialised). */
  output(shape: number[]): { t: tf.Tensor; p: number } {
    const info = this.backend.makeOutput(shape, 'float32');
    const t = (tf.engine() as unknown as { makeTensorFromTensorInfo(i: unknown): tf.Tensor }).makeTensorFromTensorInfo(info);
    return { t, p: this.ptr(t) };
  }

  get f32(): Float32Array {
    if (this.f32View.buffer !== this.memory.buffer) this.f32View = new Float32Array(this.memory.buffer);
    return this.f32View;
  }

  get i32(): Int32Array {
    if (this.i32View.buffer !== this.memory.buffer) this.i32View = new Int32Array(this.memory.buffer);
    return this.i32View;
  }

  /** Copies values into the arena; returns their pointer. */
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

  /** Zeros n floats at p. */
  zero(p: number, n: number): number {
    this.f32.fill(0, p >> 2, (p >> 2) + n);
    return p;
  }

  /** A view of n floats at p, valid until the next allocation (which may grow the memory). */
  view(p: number, n: number): Float32Array {
    return this.f32.subarray(p >> 2, (p >> 2) + n);
  }
}

let loaded: FusedKernels | null | undefined;

/**
 * V8 first runs WebAssembly from its baseline compiler and moves hot functions to its optimizing one later,
 * in the background: these kernels are few and all hot, so they are optimized at once, and the default is
 * back for every module compiled after them (tfjs's own, in threads started later).
 */
function compileOptimized(bytes: Uint8Array<ArrayBuffer>): WebAssembly.Module {
  setFlagsFromString('--no-wasm-dynamic-tiering');
  try {
    return new WebAssembly.Module(bytes);
  } finally {
    setFlagsFromString('--wasm-dynamic-tiering');
  }
}

/**
 * The kernels on this thread's tfjs wasm backend, or null on another backend or without WebAssembly SIMD.
 * SWITCH_SIM_FUSED_WASM (comma-separated files, names here or absolute paths) replaces the files tried, for checks:
 * `fused.wasm` runs the build without relaxed SIMD where the other would load, a path an older build.
 */
export function fusedKernels(): FusedKernels | null {
  if (loaded !== undefined) return loaded;
  if (tf.getBackend() !== 'wasm') return null; // not cached: the backend may not be started yet
  const backend = tf.backend() as unknown as WasmBackend;
  loaded = null;
  const files = process.env.SWITCH_SIM_FUSED_WASM?.split(',') ?? ['fused-fma.wasm', 'fused.wasm'];
  for (const file of files) {
    try {
      const bytes = readFileSync(file.startsWith('/') ? file : new URL(`./${file}`, import.meta.url));
      // relaxed SIMD's fused multiply-add: standard, but behind a flag in Node 20's V8
      if (!WebAssembly.validate(bytes)) setFlagsFromString('--experimental-wasm-relaxed-simd');
      const instance = new WebAssembly.Instance(compileOptimized(bytes), { env: { memory: backend.wasm.asm.memory } });
      loaded = new FusedKernels(instance.exports as unknown as FusedExports, backend);
      break;
    } catch {
      // no relaxed SIMD here: the next file; no WebAssembly SIMD at all: null, the tfjs path
    }
  }
  return loaded;
}
