import { readFileSync } from 'node:fs';

/**
 * Loader for attention.wasm (WebAssembly SIMD, built from attention.c by scripts/build-kernels.sh).
 * Arguments are copied into the module's memory, which grows to the largest call seen.
 */
interface Exports {
  attention_forward(
    qkv: number, o: number, lse: number, B: number, T: number, H: number, hd: number, scratch: number,
  ): void;
  attention_backward(
    qkv: number, o: number, lse: number, dO: number, dqkv: number, B: number, T: number, H: number, hd: number,
    scratch: number,
  ): void;
  __heap_base: WebAssembly.Global;
}

export interface AttentionDims {
  batch: number;
  seqLen: number;
  heads: number;
  headDim: number;
}

let kernel: { exports: Exports; memory: WebAssembly.Memory; base: number } | null | undefined;

function load(): typeof kernel {
  if (kernel !== undefined) return kernel;
  try {
    const bytes = readFileSync(new URL('./attention.wasm', import.meta.url));
    const memory = new WebAssembly.Memory({ initial: 64 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    const exports = instance.exports as unknown as Exports;
    kernel = { exports, memory, base: Number(exports.__heap_base.value) };
  } catch {
    kernel = null; // no WebAssembly SIMD here: callers fall back to the JavaScript kernel
  }
  return kernel;
}

export const wasmAttentionAvailable = (headDim: number) => headDim % 4 === 0 && load() !== null;

/** Lays out float32 arrays of the given lengths after the heap base (16-byte aligned); grows memory. */
function layout(lengths: number[]): { offsets: number[]; f32: Float32Array } {
  const k = load()!;
  const offsets: number[] = [];
  let at = Math.ceil(k.base / 16) * 16;
  for (const n of lengths) {
    offsets.push(at);
    at += Math.ceil((n * 4) / 16) * 16;
  }
  const need = at - k.memory.buffer.byteLength;
  if (need > 0) k.memory.grow(Math.ceil(need / 65536));
  return { offsets, f32: new Float32Array(k.memory.buffer) };
}

/** Runs the forward kernel; o and lse are views of the kernel's memory, valid until its next call. */
export function wasmAttentionForward(qkv: Float32Array, d: AttentionDims): { o: Float32Array; lse: Float32Array } {
  const { batch: B, seqLen: T, heads: H, headDim: hd } = d;
  const N = B * T, D = H * hd;
  const { offsets: [pq, po, pl, ps], f32 } = layout([
    N * 3 * D, N * D, B * H * T, 4 * T * hd + T,
  ]) as { offsets: number[]; f32: Float32Array };
  f32.set(qkv, pq! / 4);
  load()!.exports.attention_forward(pq!, po!, pl!, B, T, H, hd, ps!);
  return { o: f32.subarray(po! / 4, po! / 4 + N * D), lse: f32.subarray(pl! / 4, pl! / 4 + B * H * T) };
}

/** Runs the backward kernel; dqkv is a view of the kernel's memory, valid until its next call. */
export function wasmAttentionBackward(
  qkv: Float32Array, o: Float32Array, lse: Float32Array, dO: Float32Array, d: AttentionDims,
): Float32Array {
  const { batch: B, seqLen: T, heads: H, headDim: hd } = d;
  const N = B * T, D = H * hd;
  const { offsets, f32 } = layout([N * 3 * D, N * D, B * H * T, N * D, N * 3 * D, 8 * T * hd + 2 * T * T + 2 * T]);
  const [pq, po, pl, pg, pd, ps] = offsets as [number, number, number, number, number, number];
  f32.set(qkv, pq / 4);
  f32.set(o, po / 4);
  f32.set(lse, pl / 4);
  f32.set(dO, pg / 4);
  load()!.exports.attention_backward(pq, po, pl, pg, pd, B, T, H, hd, ps);
  return f32.subarray(pd / 4, pd / 4 + N * 3 * D);
}
