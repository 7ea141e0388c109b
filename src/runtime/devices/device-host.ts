import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import type { LayerBuffers } from '../../core/comm/buffers.js';
import { initExpertParams, type ParamSet } from '../../core/model/params.js';
import { expertsOf } from '../../core/router/placement.js';
import { expertFf, trainedActivation } from '../../core/model/trainable.js';
import { readView } from '../../core/backend/view.js';
import { absoluteNow } from '../../core/instrument/recorder.js';
import { expertBackward, expertForward, type ExpertWeights } from './ffn.js';
import { getHeapStatistics } from 'node:v8';
import type { BackwardRequest, ComputeReport, DeviceMemory, DeviceState, DeviceTiming, ExchangeMessage, ForwardRequest, GradNormReport, TouchRequest } from './messages.js';
import { copyRows, gather, rowsFor, scatter, slotView, type SlotView } from './slot-view.js';
import { BackendStore, HostStore, type ExpertStore, type KernelStore } from './store.js';
import { GpuJsExperts, type GpuJsWeights } from './gpujs-ffn.js';
import { openGpuJs, type GpuJsRuntime, type Operand } from './gpujs-runtime.js';
import { GpuJsStore } from './gpujs-store.js';

/** A thread's memory report: tfjs's tensors and, on gpu.js's WebGPU mode, the host's resident buffers. */
export function threadMemory(host?: DeviceHost): DeviceMemory {
  const m = tf.memory();
  const r = host?.residentBuffers ?? { count: 0, bytes: 0 };
  return { tensors: m.numTensors + r.count, bytes: m.numBytes + r.bytes, heap_mb: +(getHeapStatistics().used_heap_size / 2 ** 20).toFixed(1) };
}

const FIELDS = ['w1', 'b1', 'w2', 'b2'] as const;
/** What an expert's forward keeps for its backward: tensors (tfjs backends) or gpu.js operands, with the bucket's rows. */
type Kept = { kind: 'tensor'; x: tf.Tensor2D; a: tf.Tensor2D; rows: number } | { kind: 'kernel'; x: Operand; a: Operand; rows: number } | undefined;

/** gpu.js's side of a device: the FFN kernels and where their operands live */
interface Kernels {
  ffn: GpuJsExperts;
  store: KernelStore;
}

function deviceParams(config: Config, switchBlocks: number[], experts: number[]): ParamSet {
  const params: ParamSet = new Map();
  for (const block of switchBlocks) {
    for (const e of experts) for (const [k, p] of initExpertParams(config, block, e)) params.set(k, p);
  }
  return params;
}

/** Where an exchange's time went on the device: slots into tensors (upload), results back (download), as absolute [start, end] spans. */
interface Phases {
  upload: [number, number][];
  download: [number, number][];
}

const newPhases = (): Phases => ({ upload: [], download: [] });
const total = (spans: [number, number][]) => spans.reduce((a, [s, e]) => a + e - s, 0);

/**
 * A device: owns its experts' weights, gradients and AdamW state (in an ExpertStore: host memory on
 * wasm and cpu, the backend's memory on a GPU) and runs their forward and backward on the slots it
 * is sent. The same class serves the in-process transport and the worker-thread transport.
 * On a GPU backend, each expert's rows are padded with zero rows to a power-of-two bucket, so that
 * the backend compiles one program per bucket instead of one per token count (zero rows add nothing
 * to any gradient).
 */
export class DeviceHost {
  readonly experts: number[];
  /** tfjs backends: the store whose weights are tensors */
  private readonly store?: ExpertStore;
  /** parallel.backend gpujs: the FFN as gpu.js kernels and its store */
  private readonly kernels?: Kernels;
  /** wasm and cpu compute in this thread's memory: results are read synchronously, shapes need no buckets */
  private readonly onHost: boolean;
  /** per (Switch layer, micro-batch), per local expert: inputs and pre-activations kept for backward */
  private readonly stash = new Map<string, Kept[]>();

  constructor(
    private readonly config: Config,
    readonly device: number,
    private readonly switchBlocks: number[],
    private readonly buffers: LayerBuffers[],
    backend = tf.getBackend(),
    kernels?: Kernels,
  ) {
    this.experts = expertsOf(config, device);
    this.onHost = backend === 'wasm' || backend === 'cpu';
    if (kernels) this.kernels = kernels;
    else {
      const params = deviceParams(config, switchBlocks, this.experts);
      this.store = this.onHost ? new HostStore(config, params) : new BackendStore(config, params);
    }
  }

  /**
   * A device on its configured backend. gpujs opens gpu.js here: on WebGPU its weights, gradients and
   * moments go to the GPU (GpuJsStore); in gpu.js's CPU mode they stay in host arrays (HostStore).
   */
  static async open(config: Config, device: number, switchBlocks: number[], buffers: LayerBuffers[]): Promise<DeviceHost> {
    if (config.parallel.backend !== 'gpujs') return new DeviceHost(config, device, switchBlocks, buffers);
    const runtime = await openGpuJs();
    const params = deviceParams(config, switchBlocks, expertsOf(config, device));
    const store = runtime.resident ? await GpuJsStore.open(config, runtime, params) : new HostStore(config, params);
    const ffn = new GpuJsExperts(runtime, config.model.d_model, expertFf(config), trainedActivation(config));
    return new DeviceHost(config, device, switchBlocks, buffers, tf.getBackend(), { ffn, store });
  }

  private get core(): ExpertStore | KernelStore {
    return (this.store ?? this.kernels?.store)!;
  }

  /** gpu.js resident buffers alive on this device (0 off gpu.js's WebGPU mode), for the memory report */
  get residentBuffers(): { count: number; bytes: number } {
    const rt: GpuJsRuntime | undefined = this.kernels?.ffn.runtime;
    return { count: rt?.live ?? 0, bytes: rt?.liveBytes ?? 0 };
  }

  private name(layer: number, expert: number, field: string): string {
    return `h.${this.switchBlocks[layer]}.experts.${expert}.${field}`;
  }

  private expertWeights(layer: number, expert: number): ExpertWeights {
    const [w1, b1, w2, b2] = FIELDS.map((f) => this.store!.weight(this.name(layer, expert, f)));
    return { w1, b1, w2, b2 } as ExpertWeights;
  }

  private view(req: ExchangeMessage, dir: 'dispatch' | 'gradOut' | 'combine' | 'gradIn', payload?: Float32Array): SlotView {
    return slotView(this.buffers, req.layer, dir, req, this.experts, this.config.moe.n_experts, payload);
  }

  private outputView(req: ExchangeMessage, dir: 'combine' | 'gradIn'): SlotView {
    return this.view(req, dir, req.payload ? new Float32Array(req.payload.length) : undefined);
  }

  /** Rows a GPU computes on for n real rows: the next power of two (at least 16); n itself on the host. */
  bucket(n: number): number {
    return this.onHost && !this.kernels ? n : Math.max(16, 2 ** Math.ceil(Math.log2(n)));
  }

  private arrays(layer: number, expert: number): GpuJsWeights {
    const [w1, b1, w2, b2] = FIELDS.map((f) => this.kernels!.store.array(this.name(layer, expert, f)));
    return { w1: w1!, b1: b1!, w2: w2!, b2: b2! };
  }

  /** slots onto the device for gpu.js (an upload on WebGPU) */
  private async kernelUpload(rows: Float32Array, phases: Phases): Promise<Operand> {
    const t0 = absoluteNow();
    const x = await this.kernels!.ffn.runtime.upload(rows);
    if (this.kernels!.ffn.runtime.resident) phases.upload.push([t0, absoluteNow()]);
    return x;
  }

  /** a gpu.js result back (a download on WebGPU, which also waits for the kernels that make it); released */
  private async kernelDownload(x: Operand, phases: Phases): Promise<Float32Array> {
    const rt = this.kernels!.ffn.runtime;
    const t0 = absoluteNow();
    const data = await rt.download(x);
    if (rt.resident) phases.download.push([t0, absoluteNow()]);
    rt.release(x);
    return data;
  }

  /** A tensor's values: a view of the wasm heap at once on the host (read it before any other op), a download from a GPU. */
  private async download(t: tf.Tensor, phases: Phases): Promise<Float32Array> {
    if (this.onHost) return readView(t);
    const t0 = absoluteNow();
    const data = (await t.data()) as Float32Array;
    phases.download.push([t0, absoluteNow()]);
    return data;
  }

  private upload(rows: Float32Array, n: number, phases: Phases): tf.Tensor2D {
    const t0 = absoluteNow();
    const x = tf.tensor2d(rows, [n, this.config.model.d_model]);
    phases.upload.push([t0, absoluteNow()]);
    return x;
  }

  /**
   * `parallel.fault.kind: slow` (a test and profiling hook): this device takes `delay_ms` longer on
   * every exchange from `fault.step` on, as a straggler GPU would. Blocks its own thread only.
   */
  private straggle(step: number): void {
    const f = this.config.parallel.fault;
    if (f.kind !== 'slow' || f.device !== this.device || step < f.step || f.delay_ms <= 0) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, f.delay_ms);
  }

  /** o = FFN_e(x) for every local expert e on its slots; writes the combine slots. */
  async forward(req: ForwardRequest): Promise<ComputeReport> {
    const t0 = absoluteNow();
    this.straggle(req.step);
    const { d_model: d } = this.config.model;
    const E = this.config.moe.n_experts;
    const input = this.view(req, 'dispatch', req.payload);
    const output = this.outputView(req, 'combine');
    const key = `${req.layer}/${req.micro}`;
    this.dropStash(key);
    const kept: Kept[] = [];
    const phases = newPhases();
    let rows = 0;
    for (const e of this.experts) {
      const n = rowsFor(req.counts, E, e);
      rows += n;
      if (n === 0) {
        kept.push(undefined); // an expert that got no token computes nothing (XNNPACK rejects empty matmuls)
        continue;
      }
      const m = this.bucket(n);
      const xs = gather(input, e, req.counts, E, d, m);
      if (this.kernels) {
        const x = await this.kernelUpload(xs, phases);
        const f = await this.kernels.ffn.forward(x, m, this.arrays(req.layer, e));
        scatter(output, e, req.counts, E, d, await this.kernelDownload(f.o, phases));
        if (req.train) kept.push({ kind: 'kernel', x, a: f.a, rows: m });
        else this.kernels.ffn.runtime.release(x, f.a);
        continue;
      }
      const x = this.upload(xs, m, phases);
      const f = expertForward(x, this.expertWeights(req.layer, e), trainedActivation(this.config));
      scatter(output, e, req.counts, E, d, await this.download(f.o, phases));
      f.o.dispose();
      if (req.train) kept.push({ kind: 'tensor', x, a: f.a, rows: m });
      else tf.dispose([x, f.a]);
    }
    if (req.train) this.stash.set(key, kept);
    return this.report(t0, rows, phases, req.payload ? output.data : undefined);
  }

  /** ∂L/∂x for every local expert's slots; the weight gradients accumulate in the store. */
  async backward(req: BackwardRequest): Promise<ComputeReport> {
    const t0 = absoluteNow();
    this.straggle(req.step);
    const d = this.config.model.d_model;
    const E = this.config.moe.n_experts;
    const key = `${req.layer}/${req.micro}`;
    const kept = this.stash.get(key);
    if (!kept) throw new Error(`backward for Switch layer ${req.layer} (micro-batch ${req.micro}) without a training forward`);
    const input = this.view(req, 'gradOut', req.payload);
    const output = this.outputView(req, 'gradIn');
    const phases = newPhases();
    let rows = 0;
    for (const [i, e] of this.experts.entries()) {
      const k = kept[i];
      const n = rowsFor(req.counts, E, e);
      rows += n;
      if (!k || n === 0) continue;
      const gs = gather(input, e, req.counts, E, d, k.rows);
      if (k.kind === 'kernel') {
        const g = await this.kernelUpload(gs, phases);
        const r = await this.kernels!.ffn.backward(k.x, k.a, g, k.rows, this.arrays(req.layer, e));
        this.kernels!.ffn.runtime.release(g);
        scatter(output, e, req.counts, E, d, await this.kernelDownload(r.dx, phases));
        for (const f of FIELDS) await this.kernels!.store.accumulateArray(this.name(req.layer, e, f), r[f]);
        continue;
      }
      const g = this.upload(gs, k.rows, phases);
      const r = expertBackward(k.x, k.a, g, this.expertWeights(req.layer, e), trainedActivation(this.config));
      scatter(output, e, req.counts, E, d, await this.download(r.dx, phases));
      for (const f of FIELDS) this.store!.accumulate(this.name(req.layer, e, f), r[f]);
      tf.dispose([g, r.dx]);
    }
    this.dropStash(key);
    return this.report(t0, rows, phases, req.payload ? output.data : undefined);
  }

  private report(start: number, rows: number, phases: Phases, payload: Float32Array | undefined): ComputeReport {
    const end = absoluteNow();
    return {
      device: this.device, start, end, computeMs: end - start, uploadMs: total(phases.upload), downloadMs: total(phases.download),
      segments: [...phases.upload.map(([s, e]) => ({ name: 'upload' as const, start: s, end: e })), ...phases.download.map(([s, e]) => ({ name: 'download' as const, start: s, end: e }))],
      rows, payload,
    };
  }

  /** The all-to-all alone: copies each local expert's rows from the dispatch slots to the combine slots. */
  touch(req: TouchRequest): ComputeReport {
    const t0 = absoluteNow();
    const input = this.view(req, 'dispatch', req.payload);
    const output = this.outputView(req, 'combine');
    let rows = 0;
    for (const e of this.experts) rows += copyRows(input, output, e, req.counts, this.config.moe.n_experts, this.config.model.d_model);
    return this.report(t0, rows, newPhases(), req.payload ? output.data : undefined);
  }

  private dropStash(key: string): void {
    for (const k of this.stash.get(key) ?? []) {
      if (k?.kind === 'tensor') tf.dispose([k.x, k.a]);
      if (k?.kind === 'kernel') this.kernels!.ffn.runtime.release(k.x, k.a);
    }
    this.stash.delete(key);
  }

  /** Σ‖grad‖² over this device's experts, for global-norm clipping. */
  async gradSquaredNorm(): Promise<GradNormReport> {
    const start = absoluteNow();
    const value = await this.core.gradSquaredNorm();
    return { value, start, end: absoluteNow() };
  }

  async step(lr: number, clipScale: number, t: number): Promise<DeviceTiming> {
    const start = absoluteNow();
    await this.core.step(lr, clipScale, t);
    return { start, end: absoluteNow() };
  }

  state(): Promise<DeviceState> {
    return this.core.state();
  }

  async load(state: DeviceState): Promise<void> {
    await this.core.load(state);
  }

  dispose(): void {
    for (const l of [...this.stash.keys()]) this.dropStash(l);
    this.core.dispose();
    this.kernels?.ffn.runtime.dispose();
  }
}
