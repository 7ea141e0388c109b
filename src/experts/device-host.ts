import * as tf from '@tensorflow/tfjs';
import type { Config } from '../config/defaults.js';
import { view, type Direction, type LayerBuffers } from '../comm/buffers.js';
import { initExpertParams, type ParamSet } from '../model/params.js';
import { AdamW, sumSquares } from '../train/adamw.js';
import { readView } from '../backend/view.js';
import { expertBackward, expertForward, type ExpertWeights } from './ffn.js';
import { absoluteNow } from '../profile/recorder.js';
import type { BackwardRequest, ComputeReport, DeviceState, DeviceTiming, ExchangeMessage, ForwardRequest, GradNormReport, TouchRequest } from './messages.js';

/** The experts of `device`: global indices [device·E/D, (device+1)·E/D). */
export function expertsOf(config: Config, device: number): number[] {
  const per = config.moe.n_experts / config.parallel.devices;
  return Array.from({ length: per }, (_, i) => device * per + i);
}

const FIELDS = ['w1', 'b1', 'w2', 'b2'] as const;
const EMPTY = { x: undefined, a: undefined } as unknown as { x: tf.Tensor2D; a: tf.Tensor2D };

/**
 * Where one exchange's slots are: the shared [G, E, C_max, d] buffer (its groups from `firstGroup`),
 * or the device's own compact [groups, E_local, C, d] copy.
 */
interface SlotView {
  data: Float32Array;
  /** experts per group in `data`, and the global index of the first */
  experts: number;
  base: number;
  /** rows per (group, expert) block */
  stride: number;
  firstGroup: number;
}

/**
 * A device: owns its experts' weights, gradients and AdamW state, and runs their forward and
 * backward on the slots it is sent. The same class serves the in-process transport and the
 * worker-thread transport (there it lives inside the worker).
 */
export class DeviceHost {
  readonly experts: number[];
  readonly params: ParamSet = new Map();
  private readonly grads = new Map<string, Float32Array>();
  private weights = new Map<string, tf.Tensor>();
  /** per (Switch layer, micro-batch), per local expert: inputs and pre-activations kept for backward */
  private readonly stash = new Map<string, { x: tf.Tensor2D; a: tf.Tensor2D }[]>();
  private readonly optimizer: AdamW;

  constructor(
    private readonly config: Config,
    readonly device: number,
    private readonly switchBlocks: number[],
    private readonly buffers: LayerBuffers[],
  ) {
    this.experts = expertsOf(config, device);
    for (const block of switchBlocks) {
      for (const e of this.experts) for (const [k, p] of initExpertParams(config, block, e)) this.params.set(k, p);
    }
    for (const [k, p] of this.params) this.grads.set(k, new Float32Array(p.data.length));
    const t = config.train;
    this.optimizer = new AdamW({ beta1: t.beta1, beta2: t.beta2, eps: 1e-8, weightDecay: t.weight_decay });
    this.upload();
  }

  private name(layer: number, expert: number, field: string): string {
    return `h.${this.switchBlocks[layer]}.experts.${expert}.${field}`;
  }

  private upload(): void {
    tf.dispose([...this.weights.values()]);
    this.weights = new Map([...this.params].map(([k, p]) => [k, tf.tensor(p.data, p.shape)]));
  }

  private expertWeights(layer: number, expert: number): ExpertWeights {
    const [w1, b1, w2, b2] = FIELDS.map((f) => this.weights.get(this.name(layer, expert, f))!);
    return { w1, b1, w2, b2 } as ExpertWeights;
  }

  private slots(layer: number, dir: Direction, req: ExchangeMessage, payload?: Float32Array): SlotView {
    if (payload) return { data: payload, experts: this.experts.length, base: this.experts[0]!, stride: req.capacity, firstGroup: 0 };
    const b = this.buffers[layer]!;
    return { data: view(b[dir]), experts: this.config.moe.n_experts, base: 0, stride: b.shape.capacity, firstGroup: req.firstGroup };
  }

  /** Gathers expert e's rows from every group of the exchange into one [n, d] matrix. */
  private gather(v: SlotView, e: number, counts: Int32Array): Float32Array {
    const d = this.config.model.d_model;
    const E = this.config.moe.n_experts;
    const G = counts.length / E;
    let n = 0;
    for (let g = 0; g < G; g++) n += counts[g * E + e]!;
    const out = new Float32Array(n * d);
    let row = 0;
    for (let g = 0; g < G; g++) {
      const c = counts[g * E + e]!;
      const off = ((v.firstGroup + g) * v.experts + (e - v.base)) * v.stride * d;
      out.set(v.data.subarray(off, off + c * d), row * d);
      row += c;
    }
    return out;
  }

  private scatter(v: SlotView, e: number, counts: Int32Array, rows: Float32Array): void {
    const d = this.config.model.d_model;
    const E = this.config.moe.n_experts;
    const G = counts.length / E;
    let row = 0;
    for (let g = 0; g < G; g++) {
      const c = counts[g * E + e]!;
      v.data.set(rows.subarray(row * d, (row + c) * d), ((v.firstGroup + g) * v.experts + (e - v.base)) * v.stride * d);
      row += c;
    }
  }

  private outputView(layer: number, dir: 'combine' | 'gradIn', req: ExchangeMessage): SlotView {
    return this.slots(layer, dir, req, req.payload ? new Float32Array(req.payload.length) : undefined);
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
  forward(req: ForwardRequest): ComputeReport {
    const t0 = absoluteNow();
    this.straggle(req.step);
    const d = this.config.model.d_model;
    const input = this.slots(req.layer, 'dispatch', req, req.payload);
    const output = this.outputView(req.layer, 'combine', req);
    const key = `${req.layer}/${req.micro}`;
    this.dropStash(key);
    const kept: { x: tf.Tensor2D; a: tf.Tensor2D }[] = [];
    let rows = 0;
    for (const e of this.experts) {
      const xs = this.gather(input, e, req.counts);
      const n = xs.length / d;
      rows += n;
      if (n === 0) {
        kept.push(EMPTY); // an expert that got no token computes nothing (XNNPACK rejects empty matmuls)
        continue;
      }
      const x = tf.tensor2d(xs, [n, d]);
      const f = expertForward(x, this.expertWeights(req.layer, e), this.config.model.activation);
      this.scatter(output, e, req.counts, readView(f.o));
      f.o.dispose();
      if (req.train) kept.push({ x, a: f.a });
      else tf.dispose([x, f.a]);
    }
    if (req.train) this.stash.set(key, kept);
    return this.report(t0, rows, req.payload ? output.data : undefined);
  }

  private report(start: number, rows: number, payload: Float32Array | undefined): ComputeReport {
    const end = absoluteNow();
    return { device: this.device, start, end, computeMs: end - start, rows, payload };
  }

  /** The all-to-all alone: copies each local expert's rows from the dispatch slots to the combine slots. */
  touch(req: TouchRequest): ComputeReport {
    const t0 = absoluteNow();
    const input = this.slots(req.layer, 'dispatch', req, req.payload);
    const output = this.outputView(req.layer, 'combine', req);
    const d = this.config.model.d_model;
    const E = this.config.moe.n_experts;
    let rows = 0;
    for (const e of this.experts) {
      for (let g = 0; g < req.counts.length / E; g++) {
        const n = req.counts[g * E + e]! * d;
        const from = ((input.firstGroup + g) * input.experts + (e - input.base)) * input.stride * d;
        const to = ((output.firstGroup + g) * output.experts + (e - output.base)) * output.stride * d;
        output.data.set(input.data.subarray(from, from + n), to); // block to block: the rows are contiguous
        rows += n / d;
      }
    }
    return this.report(t0, rows, req.payload ? output.data : undefined);
  }

  /** ∂L/∂x for every local expert's slots; accumulates the weight gradients here. */
  backward(req: BackwardRequest): ComputeReport {
    const t0 = absoluteNow();
    this.straggle(req.step);
    const d = this.config.model.d_model;
    const key = `${req.layer}/${req.micro}`;
    const kept = this.stash.get(key);
    if (!kept) throw new Error(`backward for Switch layer ${req.layer} (micro-batch ${req.micro}) without a training forward`);
    const input = this.slots(req.layer, 'gradOut', req, req.payload);
    const output = this.outputView(req.layer, 'gradIn', req);
    let rows = 0;
    this.experts.forEach((e, i) => {
      const { x, a } = kept[i]!;
      const gs = this.gather(input, e, req.counts);
      const n = gs.length / d;
      rows += n;
      if (n === 0) return;
      const g = tf.tensor2d(gs, [n, d]);
      const r = expertBackward(x, a, g, this.expertWeights(req.layer, e), this.config.model.activation);
      this.scatter(output, e, req.counts, readView(r.dx));
      for (const f of FIELDS) {
        const acc = this.grads.get(this.name(req.layer, e, f))!;
        const gd = readView(r[f]);
        for (let j = 0; j < acc.length; j++) acc[j]! += gd[j]!;
      }
      tf.dispose([g, r.dx, r.w1, r.b1, r.w2, r.b2]);
    });
    this.dropStash(key);
    return this.report(t0, rows, req.payload ? output.data : undefined);
  }

  private dropStash(key: string): void {
    const s = this.stash.get(key);
    if (s) for (const k of s) if (k !== EMPTY) tf.dispose([k.x, k.a]);
    this.stash.delete(key);
  }

  /** Σ‖grad‖² over this device's experts, for global-norm clipping. */
  gradSquaredNorm(): GradNormReport {
    const start = absoluteNow();
    const value = sumSquares(this.grads.values());
    return { value, start, end: absoluteNow() };
  }

  step(lr: number, clipScale: number, t: number): DeviceTiming {
    const start = absoluteNow();
    this.optimizer.step(this.params, this.grads, lr, clipScale, t);
    for (const g of this.grads.values()) g.fill(0);
    this.upload();
    return { start, end: absoluteNow() };
  }

  state(): DeviceState {
    const rec = <T>(m: Map<string, T>) => Object.fromEntries(m) as Record<string, T>;
    return { params: rec(this.params), m: rec(this.optimizer.state.m), v: rec(this.optimizer.state.v) };
  }

  load(state: DeviceState): void {
    for (const [k, p] of this.params) {
      const src = state.params[k];
      if (!src || src.data.length !== p.data.length) throw new Error(`checkpoint lacks expert parameter ${k} of shape [${p.shape}]`);
      p.data.set(src.data);
      if (state.m[k] && state.v[k]) {
        this.optimizer.state.m.set(k, Float32Array.from(state.m[k]!));
        this.optimizer.state.v.set(k, Float32Array.from(state.v[k]!));
      }
    }
    this.upload();
  }

  dispose(): void {
    for (const l of [...this.stash.keys()]) this.dropStash(l);
    tf.dispose([...this.weights.values()]);
    this.weights.clear();
  }
}
