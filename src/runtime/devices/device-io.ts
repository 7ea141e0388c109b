import tf from '../../core/util/tfjs.cjs';
import { readView } from '../../core/backend/view.js';
import { absoluteNow } from '../../core/instrument/recorder.js';
import type { GpuJsRuntime, Operand } from './gpujs-runtime.js';
import type { ComputeReport } from './messages.js';

/**
 * Where an exchange's time went on the device: slots into tensors (upload), results back (download), as
 * absolute [start, end] spans.
 */
export interface Phases {
  upload: [number, number][];
  download: [number, number][];
}

export const newPhases = (): Phases => ({ upload: [], download: [] });
const total = (spans: [number, number][]) => spans.reduce((a, [s, e]) => a + e - s, 0);

/**
 * An exchange's rows onto the device's backend and its results back, each transfer timed into the
 * exchange's Phases: tfjs tensors (a view of the wasm heap on the host, a download from a GPU), or
 * gpu.js operands (uploads and downloads only on gpu.js's WebGPU mode).
 */
export class Transfers {
  constructor(
    /** wasm and cpu compute in this thread's memory: results are read synchronously */
    private readonly onHost: boolean,
    private readonly dModel: number,
    /** parallel.backend gpujs: the runtime its operands live in */
    private readonly runtime?: GpuJsRuntime,
  ) {}

  /** slots onto the device for gpu.js (an upload on WebGPU) */
  async kernelUpload(rows: Float32Array, phases: Phases): Promise<Operand> {
    const t0 = absoluteNow();
    const x = await this.runtime!.upload(rows);
    if (this.runtime!.resident) phases.upload.push([t0, absoluteNow()]);
    return x;
  }

  /** a gpu.js result back (a download on WebGPU, which also waits for the kernels that make it); released */
  async kernelDownload(x: Operand, phases: Phases): Promise<Float32Array> {
    const rt = this.runtime!;
    const t0 = absoluteNow();
    const data = await rt.download(x);
    if (rt.resident) phases.download.push([t0, absoluteNow()]);
    rt.release(x);
    return data;
  }

  /**
   * A tensor's values: a view of the wasm heap at once on the host (read it before any other op), a download
   * from a GPU.
   */
  async download(t: tf.Tensor, phases: Phases): Promise<Float32Array> {
    if (this.onHost) return readView(t);
    const t0 = absoluteNow();
    const data = (await t.data()) as Float32Array;
    phases.download.push([t0, absoluteNow()]);
    return data;
  }

  /** n rows [n, d] into a tensor */
  upload(rows: Float32Array, n: number, phases: Phases): tf.Tensor2D {
    const t0 = absoluteNow();
    const x = tf.tensor2d(rows, [n, this.dModel]);
    phases.upload.push([t0, absoluteNow()]);
    return x;
  }
}

/** What an exchange reports to the coordinator: its span on the device's clock, the transfers' share, the rows. */
export function computeReport(
  device: number, start: number, rows: number, phases: Phases, payload: Float32Array | undefined,
): ComputeReport {
  const end = absoluteNow();
  const segments = [
    ...phases.upload.map(([s, e]) => ({ name: 'upload' as const, start: s, end: e })),
    ...phases.download.map(([s, e]) => ({ name: 'download' as const, start: s, end: e })),
  ];
  const [uploadMs, downloadMs] = [total(phases.upload), total(phases.download)];
  return { device, start, end, computeMs: end - start, uploadMs, downloadMs, segments, rows, payload };
}
