import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import type { LayerBuffers } from '../../core/comm/buffers.js';
import { trainedActivation } from '../../core/model/trainable.js';
import { absoluteNow } from '../../core/instrument/recorder.js';
import { expertBackward, expertForward, freeRows, hostExpertBackward, hostExpertForward } from './ffn.js';
import type { ExpertWeights, HeapRows, HostExpertWeights } from './ffn.js';
import { useFused } from '../../core/model/fused/io.js';
import type { BackwardRequest, ComputeReport, ExchangeMessage, ForwardRequest, TouchRequest } from './messages.js';
import { copyRows, gather, rowsFor, scatter, slotView, type SlotView } from './slot-view.js';
import { HostStore, type ExpertStore, type KernelStore } from './store.js';
import type { GpuJsExperts, GpuJsWeights } from './gpujs-ffn.js';
import type { Operand } from './gpujs-runtime.js';
import { computeReport, newPhases, Transfers } from './device-io.js';
import { straggle } from './fault.js';

export const FIELDS = ['w1', 'b1', 'w2', 'b2'] as const;
/**
 * What an expert's forward keeps for its backward: tensors (tfjs backends), arrays (fused kernels) or gpu.js
 * operands, with the bucket's rows.
 */
type Kept =
  | { kind: 'tensor'; x: tf.Tensor2D; a: tf.Tensor2D; rows: number }
  | { kind: 'host'; x: HeapRows; a: HeapRows; rows: number }
  | { kind: 'kernel'; x: Operand; a: Operand; rows: number }
  | undefined;

/** gpu.js's side of a device: the FFN kernels and where their operands live */
export interface Kernels {
  ffn: GpuJsExperts;
  store: KernelStore;
}

/**
 * Where a device's experts live, for its exchanges: the layers' slot buffers, and the weights (tfjs store, or
 * gpu.js kernels).
 */
export interface PassTarget {
  device: number;
  experts: number[];
  switchBlocks: number[];
  buffers: LayerBuffers[];
  /** wasm and cpu compute in this thread's memory: shapes need no buckets */
  onHost: boolean;
  store?: ExpertStore;
  kernels?: Kernels;
}

/**
 * A device's local experts on an exchange's slots: forward (keeping inputs and pre-activations per
 * (Switch layer, micro-batch) for the backward), backward (weight gradients into the store), or the
 * all-to-all alone. On a GPU backend each expert's rows are padded with zero rows to a power-of-two
 * bucket, so that the backend compiles one program per bucket instead of one per token count (zero
 * rows add nothing to any gradient).
 */
export class ExpertPasses {
  /** per (Switch layer, micro-batch), per local expert: inputs and pre-activations kept for backward */
  private readonly stash = new Map<string, Kept[]>();
  private readonly io: Transfers;

  constructor(private readonly config: Config, private readonly t: PassTarget) {
    this.io = new Transfers(t.onHost, config.model.d_model, t.kernels?.ffn.runtime);
  }

  private name(layer: number, expert: number, field: string): string {
    return `h.${this.t.switchBlocks[layer]}.experts.${expert}.${field}`;
  }

  private expertWeights(layer: number, expert: number): ExpertWeights {
    const [w1, b1, w2, b2] = FIELDS.map((f) => this.t.store!.weight(this.name(layer, expert, f)));
    return { w1, b1, w2, b2 } as ExpertWeights;
  }

  /**
   * The host store when the fused kernels compute the experts (parallel.kernels fused on wasm or cpu), else
   * undefined.
   */
  private hostFused(): HostStore | undefined {
    const store = this.t.store;
    return !this.t.kernels && store instanceof HostStore && useFused(this.config) ? store : undefined;
  }

  private hostWeights(store: HostStore, layer: number, expert: number): HostExpertWeights {
    const [w1, b1, w2, b2] = FIELDS.map((f) => store.array(this.name(layer, expert, f)));
    return { w1: w1!, b1: b1!, w2: w2!, b2: b2! };
  }

  private arrays(layer: number, expert: number): GpuJsWeights {
    const [w1, b1, w2, b2] = FIELDS.map((f) => this.t.kernels!.store.array(this.name(layer, expert, f)));
    return { w1: w1!, b1: b1!, w2: w2!, b2: b2! };
  }

  private view(
    req: ExchangeMessage, dir: 'dispatch' | 'gradOut' | 'combine' | 'gradIn', payload?: Float32Array,
  ): SlotView {
    return slotView(this.t.buffers, req.layer, dir, req, this.t.experts, this.config.moe.n_experts, payload);
  }

  private outputView(req: ExchangeMessage, dir: 'combine' | 'gradIn'): SlotView {
    return this.view(req, dir, req.payload ? new Float32Array(req.payload.length) : undefined);
  }

  /** Rows a GPU computes on for n real rows: the next power of two (at least 16); n itself on the host. */
  private bucket(n: number): number {
    return this.t.onHost && !this.t.kernels ? n : Math.max(16, 2 ** Math.ceil(Math.log2(n)));
  }

  /** o = FFN_e(x) for every local expert e on its slots; writes the combine slots. */
  async forward(req: ForwardRequest): Promise<ComputeReport> {
    const t0 = absoluteNow();
    straggle(this.config, this.t.device, req.step);
    const { d_model: d } = this.config.model;
    const E = this.config.moe.n_experts;
    const input = this.view(req, 'dispatch', req.payload);
    const output = this.outputView(req, 'combine');
    const key = `${req.layer}/${req.micro}`;
    this.dropStash(key);
    const kept: Kept[] = [];
    const phases = newPhases();
    const kernels = this.t.kernels;
    const host = this.hostFused();
    let rows = 0;
    for (const e of this.t.experts) {
      const n = rowsFor(req.counts, E, e);
      rows += n;
      if (n === 0) {
        kept.push(undefined); // an expert that got no token computes nothing (XNNPACK rejects empty matmuls)
        continue;
      }
      const m = this.bucket(n);
      const xs = gather(input, e, req.counts, E, d, m);
      if (host) {
        const f = hostExpertForward(xs, m, this.hostWeights(host, req.layer, e), trainedActivation(this.config));
        scatter(output, e, req.counts, E, d, f.o);
        if (req.train) kept.push({ kind: 'host', x: f.x, a: f.a, rows: m });
        else freeRows(f.x, f.a);
        continue;
      }
      if (kernels) {
        const x = await this.io.kernelUpload(xs, phases);
        const f = await kernels.ffn.forward(x, m, this.arrays(req.layer, e));
        scatter(output, e, req.counts, E, d, await this.io.kernelDownload(f.o, phases));
        if (req.train) kept.push({ kind: 'kernel', x, a: f.a, rows: m });
        else kernels.ffn.runtime.release(x, f.a);
        continue;
      }
      const x = this.io.upload(xs, m, phases);
      const f = expertForward(x, this.expertWeights(req.layer, e), trainedActivation(this.config));
      scatter(output, e, req.counts, E, d, await this.io.download(f.o, phases));
      f.o.dispose();
      if (req.train) kept.push({ kind: 'tensor', x, a: f.a, rows: m });
      else tf.dispose([x, f.a]);
    }
    if (req.train) this.stash.set(key, kept);
    return computeReport(this.t.device, t0, rows, phases, req.payload ? output.data : undefined);
  }

  /** ∂L/∂x for every local expert's slots; the weight gradients accumulate in the store. */
  async backward(req: BackwardRequest): Promise<ComputeReport> {
    const t0 = absoluteNow();
    straggle(this.config, this.t.device, req.step);
    const d = this.config.model.d_model;
    const E = this.config.moe.n_experts;
    const key = `${req.layer}/${req.micro}`;
    const kept = this.stash.get(key);
    if (!kept) throw new Error(`backward for Switch layer ${req.layer} (micro-batch ${req.micro}) without a training ` +
      `forward`);
    const input = this.view(req, 'gradOut', req.payload);
    const output = this.outputView(req, 'gradIn');
    const phases = newPhases();
    let rows = 0;
    for (const [i, e] of this.t.experts.entries()) {
      const k = kept[i];
      const n = rowsFor(req.counts, E, e);
      rows += n;
      if (!k || n === 0) continue;
      const gs = gather(input, e, req.counts, E, d, k.rows);
      if (k.kind === 'host') {
        const host = this.hostFused()!;
        const r = hostExpertBackward(
          k.x, k.a, gs, this.hostWeights(host, req.layer, e), trainedActivation(this.config),
        );
        scatter(output, e, req.counts, E, d, r.dx);
        for (const f of FIELDS) host.accumulateHost(this.name(req.layer, e, f), r[f]);
        continue;
      }
      if (k.kind === 'kernel') {
        const { ffn, store } = this.t.kernels!;
        const g = await this.io.kernelUpload(gs, phases);
        const r = await ffn.backward(k.x, k.a, g, k.rows, this.arrays(req.layer, e));
        ffn.runtime.release(g);
        scatter(output, e, req.counts, E, d, await this.io.kernelDownload(r.dx, phases));
        for (const f of FIELDS) await store.accumulateArray(this.name(req.layer, e, f), r[f]);
        continue;
      }
      const g = this.io.upload(gs, k.rows, phases);
      const r = expertBackward(k.x, k.a, g, this.expertWeights(req.layer, e), trainedActivation(this.config));
      scatter(output, e, req.counts, E, d, await this.io.download(r.dx, phases));
      for (const f of FIELDS) this.t.store!.accumulate(this.name(req.layer, e, f), r[f]);
      tf.dispose([g, r.dx]);
    }
    this.dropStash(key);
    return computeReport(this.t.device, t0, rows, phases, req.payload ? output.data : undefined);
  }

  /** The all-to-all alone: copies each local expert's rows from the dispatch slots to the combine slots. */
  touch(req: TouchRequest): ComputeReport {
    const t0 = absoluteNow();
    const input = this.view(req, 'dispatch', req.payload);
    const output = this.outputView(req, 'combine');
    let rows = 0;
    for (const e of this.t.experts) rows += copyRows(
      input, output, e, req.counts, this.config.moe.n_experts, this.config.model.d_model,
    );
    return computeReport(this.t.device, t0, rows, newPhases(), req.payload ? output.data : undefined);
  }

  private dropStash(key: string): void {
    for (const k of this.stash.get(key) ?? []) {
      if (k?.kind === 'tensor') tf.dispose([k.x, k.a]);
      if (k?.kind === 'host') freeRows(k.x, k.a);
      if (k?.kind === 'kernel') this.t.kernels!.ffn.runtime.release(k.x, k.a);
    }
    this.stash.delete(key);
  }

  /** Frees everything kept for a backward that will not come. */
  dispose(): void {
    for (const l of [...this.stash.keys()]) this.dropStash(l);
  }
}
