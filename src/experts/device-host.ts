import * as tf from '@tensorflow/tfjs';
import type { Config } from '../config/defaults.js';
import type { LayerBuffers } from '../comm/buffers.js';
import { initExpertParams, type ParamSet } from '../model/params.js';
import { readView } from '../backend/view.js';
import { absoluteNow } from '../profile/recorder.js';
import { expertBackward, expertForward, type ExpertWeights } from './ffn.js';
import type { BackwardRequest, ComputeReport, DeviceState, DeviceTiming, ExchangeMessage, ForwardRequest, GradNormReport, TouchRequest } from './messages.js';
import { copyRows, gather, rowsFor, scatter, slotView, type SlotView } from './slot-view.js';
import { BackendStore, HostStore, type ExpertStore } from './store.js';
import { openGpuJs, type GpuJsExperts, type GpuJsWeights } from './gpujs-ffn.js';

/** The experts of `device`: global indices [device·E/D, (device+1)·E/D). */
export function expertsOf(config: Config, device: number): number[] {
  const per = config.moe.n_experts / config.parallel.devices;
  return Array.from({ length: per }, (_, i) => device * per + i);
}

const FIELDS = ['w1', 'b1', 'w2', 'b2'] as const;
/** What an expert's forward keeps for its backward: tensors (tfjs backends) or arrays (gpu.js), with the bucket's rows. */
type Kept = { x: tf.Tensor2D; a: tf.Tensor2D; rows: number } | { xs: Float32Array; as: Float32Array; rows: number } | undefined;

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
  private readonly store: ExpertStore;
  /** wasm and cpu compute in this thread's memory: results are read synchronously, shapes need no buckets */
  private readonly onHost: boolean;
  /** parallel.backend gpujs: the FFN as gpu.js kernels (opened on first use) */
  private readonly useGpuJs: boolean;
  private gpujs?: GpuJsExperts;
  /** per (Switch layer, micro-batch), per local expert: inputs and pre-activations kept for backward */
  private readonly stash = new Map<string, Kept[]>();

  constructor(
    private readonly config: Config,
    readonly device: number,
    private readonly switchBlocks: number[],
    private readonly buffers: LayerBuffers[],
    backend = tf.getBackend(),
  ) {
    this.experts = expertsOf(config, device);
    const params: ParamSet = new Map();
    for (const block of switchBlocks) {
      for (const e of this.experts) for (const [k, p] of initExpertParams(config, block, e)) params.set(k, p);
    }
    this.useGpuJs = config.parallel.backend === 'gpujs';
    this.onHost = backend === 'wasm' || backend === 'cpu';
    this.store = this.onHost ? new HostStore(config, params) : new BackendStore(config, params);
  }

  private name(layer: number, expert: number, field: string): string {
    return `h.${this.switchBlocks[layer]}.experts.${expert}.${field}`;
  }

  private expertWeights(layer: number, expert: number): ExpertWeights {
    const [w1, b1, w2, b2] = FIELDS.map((f) => this.store.weight(this.name(layer, expert, f)));
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
    return this.onHost && !this.useGpuJs ? n : Math.max(16, 2 ** Math.ceil(Math.log2(n)));
  }

  private async kernels(): Promise<GpuJsExperts> {
    this.gpujs ??= await openGpuJs(this.config.model.d_model, this.config.model.d_ff, this.config.model.activation);
    return this.gpujs;
  }

  private hostWeights(layer: number, expert: number): GpuJsWeights {
    const store = this.store as HostStore;
    const [w1, b1, w2, b2] = FIELDS.map((f) => store.hostWeight(this.name(layer, expert, f)));
    return { w1: w1!, b1: b1!, w2: w2!, b2: b2! };
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
      if (this.useGpuJs) {
        const f = await (await this.kernels()).forward(xs, m, this.hostWeights(req.layer, e));
        scatter(output, e, req.counts, E, d, f.o);
        kept.push({ xs, as: f.a, rows: m });
        continue;
      }
      const x = this.upload(xs, m, phases);
      const f = expertForward(x, this.expertWeights(req.layer, e), this.config.model.activation);
      scatter(output, e, req.counts, E, d, await this.download(f.o, phases));
      f.o.dispose();
      if (req.train) kept.push({ x, a: f.a, rows: m });
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
      if ('xs' in k) {
        const r = await (await this.kernels()).backward(k.xs, k.as, gs, k.rows, this.hostWeights(req.layer, e));
        scatter(output, e, req.counts, E, d, r.dx);
        for (const f of FIELDS) (this.store as HostStore).accumulateHost(this.name(req.layer, e, f), r[f]);
        continue;
      }
      const g = this.upload(gs, k.rows, phases);
      const r = expertBackward(k.x, k.a, g, this.expertWeights(req.layer, e), this.config.model.activation);
      scatter(output, e, req.counts, E, d, await this.download(r.dx, phases));
      for (const f of FIELDS) this.store.accumulate(this.name(req.layer, e, f), r[f]);
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
    for (const k of this.stash.get(key) ?? []) if (k && 'x' in k) tf.dispose([k.x, k.a]);
    this.stash.delete(key);
  }

  /** Σ‖grad‖² over this device's experts, for global-norm clipping. */
  async gradSquaredNorm(): Promise<GradNormReport> {
    const start = absoluteNow();
    const value = await this.store.gradSquaredNorm();
    return { value, start, end: absoluteNow() };
  }

  async step(lr: number, clipScale: number, t: number): Promise<DeviceTiming> {
    const start = absoluteNow();
    await this.store.step(lr, clipScale, t);
    return { start, end: absoluteNow() };
  }

  state(): Promise<DeviceState> {
    return this.store.state();
  }

  load(state: DeviceState): void {
    this.store.load(state);
  }

  dispose(): void {
    for (const l of [...this.stash.keys()]) this.dropStash(l);
    this.store.dispose();
    this.gpujs?.dispose();
  }
}
