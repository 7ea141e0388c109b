/**
 * gpu.js for a device (`parallel.backend: gpujs`): its WebGPU mode on Dawn when an adapter answers,
 * else its CPU mode. On WebGPU every kernel runs in pipeline mode: its result stays in a GPU buffer
 * (a `Resident`) that the next kernel binds directly, so weights, gradients, AdamW moments and
 * activations live on the GPU and only slots go up and results come down. In CPU mode results are
 * plain arrays (that memory is the device's memory).
 */
import { copy } from './gpujs-kernels.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
/** a gpu.js WebGPU pipeline result: a GPU buffer a kernel can take as an array argument */
export interface Resident {
  readonly output: number[];
  readonly buffer: { size: number };
  toArray(): Promise<any>;
  delete(): void;
}
/** what kernels take and give: a resident buffer on WebGPU, a flat array in CPU mode */
export type Operand = Float32Array | Resident;

export type Kernel = ((...args: unknown[]) => any) & {
  setOutput(o: number[]): Kernel;
  setConstants(c: Record<string, number>): Kernel;
  setPipeline(p: boolean): Kernel;
  setImmutable(i: boolean): Kernel;
};
interface GpuLike {
  createKernel(fn: (...args: any[]) => number): Kernel;
  mode: string;
  destroy?: () => unknown;
}

const isResident = (x: Operand): x is Resident => !(x instanceof Float32Array);

/** a kernel's CPU-mode result (nested rows for 2-D outputs) as one flat array */
function flat(out: any): Float32Array {
  if (out instanceof Float32Array) return out;
  const rows = out as Float32Array[];
  const res = new Float32Array(rows.reduce((a, r) => a + r.length, 0));
  let at = 0;
  for (const row of rows) {
    res.set(row, at);
    at += row.length;
  }
  return res;
}

export class GpuJsRuntime {
  private readonly kernels = new Map<string, Kernel>();
  /** resident buffers handed out and not yet released, and their bytes (the device's memory report) */
  live = 0;
  liveBytes = 0;

  constructor(private readonly gpu: GpuLike) {}

  get mode(): string {
    return this.gpu.mode;
  }

  get resident(): boolean {
    return this.gpu.mode === 'webgpu';
  }

  /** The kernel named `key`, compiled on first use (gpu.js compiles per output size: keys carry the sizes). */
  kernel(key: string, fn: (...a: any[]) => number, output: number[], constants: Record<string, number> = {}): Kernel {
    let k = this.kernels.get(key);
    if (!k) {
      k = this.gpu.createKernel(fn).setOutput(output).setConstants(constants);
      if (this.resident) k = k.setPipeline(true).setImmutable(true); // each result its own buffer
      this.kernels.set(key, k);
    }
    return k;
  }

  /** Runs a kernel; the result as an Operand the caller owns (release it). */
  async run(k: Kernel, ...args: Operand[]): Promise<Operand> {
    const out = await k(...args);
    if (!this.resident) return flat(out);
    this.live++;
    this.liveBytes += (out as Resident).buffer.size;
    return out as Resident;
  }

  /** An array onto the device (a copy kernel's buffer on WebGPU; the array itself in CPU mode). */
  async upload(data: Float32Array): Promise<Operand> {
    if (!this.resident) return data;
    return this.run(this.kernel(`copy/${data.length}`, copy, [data.length]), data);
  }

  async download(x: Operand): Promise<Float32Array> {
    return isResident(x) ? flat(await x.toArray()) : x;
  }

  release(...xs: (Operand | undefined)[]): void {
    for (const x of xs) {
      if (!x || !isResident(x)) continue;
      this.live--;
      this.liveBytes -= x.buffer.size;
      x.delete();
    }
  }

  dispose(): void {
    this.gpu.destroy?.();
  }
}

/** gpu.js on WebGPU (Dawn) when an adapter answers, else its CPU mode; `mode` says which. */
export async function openGpuJs(): Promise<GpuJsRuntime> {
  const { openDawn } = await import('../../core/backend/dawn.js');
  const dawn = await openDawn().catch(() => undefined);
  if (dawn) (globalThis as { navigator?: unknown }).navigator = { gpu: dawn.gpu };
  const { GPU } = (await import('gpu.js')) as unknown as { GPU: (new (o: { mode: string }) => GpuLike)
    & { isWebGPUAvailable(): Promise<boolean> } };
  const webgpu = dawn !== undefined && (await GPU.isWebGPUAvailable());
  return new GpuJsRuntime(new GPU({ mode: webgpu ? 'webgpu' : 'cpu' }));
}
