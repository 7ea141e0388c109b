import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import { readView } from '../../core/backend/view.js';
import type { ParamSet } from '../../core/model/params.js';
import { AdamW, sumSquares } from '../../core/optim/adamw.js';
import type { DeviceState } from './messages.js';
import type { Operand } from './gpujs-runtime.js';

/**
 * Where a device keeps its experts' weights, gradients and AdamW moments.
 *  - HostStore (wasm, cpu): Float32Arrays in the thread's memory, which is also where those backends
 *    compute; AdamW in JavaScript, weights re-made as tensors after each step.
 *    gpu.js's CPU mode uses it too (through `array`).
 *  - BackendStore (webgpu, tensorflow): everything stays on the backend's memory (the GPU): gradients
 *    accumulate there, AdamW runs as tensor ops there, and only Σ‖g‖² and checkpoints come back.
 *  - GpuJsStore (gpujs-store.ts, gpu.js on WebGPU): the same, as gpu.js resident buffers and kernels.
 */
interface StoreCore {
  gradSquaredNorm(): Promise<number>;
  step(lr: number, clipScale: number, t: number): Promise<void>;
  state(): Promise<DeviceState>;
  load(state: DeviceState): void | Promise<void>;
  dispose(): void;
}

/** A store for tfjs backends: weights as tensors. */
export interface ExpertStore extends StoreCore {
  weight(name: string): tf.Tensor;
  /** adds an expert's gradient for one parameter; the store takes the tensor */
  accumulate(name: string, grad: tf.Tensor): void;
}

/** A store for gpu.js kernels: weights as kernel operands (host arrays, or GpuJsStore's GPU buffers). */
export interface KernelStore extends StoreCore {
  array(name: string): Operand;
  /** adds an expert's gradient for one parameter; the store takes it */
  accumulateArray(name: string, grad: Operand): void | Promise<void>;
}

const adamOptions = (c: Config) => ({
  beta1: c.train.beta1, beta2: c.train.beta2, eps: 1e-8, weightDecay: c.train.weight_decay,
});

export function checkLoad(params: Map<string, { shape: number[]; size: number }>, state: DeviceState): void {
  for (const [k, p] of params) {
    const src = state.params[k];
    if (!src || src.data.length !== p.size) throw new Error(`checkpoint lacks expert parameter ${k} of shape ` +
      `[${p.shape}]`);
  }
}

export class HostStore implements ExpertStore, KernelStore {
  private readonly grads = new Map<string, Float32Array>();
  private readonly weights = new Map<string, tf.Tensor>();
  private readonly optimizer: AdamW;

  constructor(config: Config, private readonly params: ParamSet) {
    for (const [k, p] of params) this.grads.set(k, new Float32Array(p.data.length));
    this.optimizer = new AdamW(adamOptions(config));
    this.upload();
  }

  /**
   * Drops the weights' tensors after the values changed; weight() makes them again when asked (the fused
   * kernels read the arrays).
   */
  private upload(): void {
    tf.dispose([...this.weights.values()]);
    this.weights.clear();
  }

  weight(name: string): tf.Tensor {
    let t = this.weights.get(name);
    if (!t) {
      const p = this.params.get(name)!;
      this.weights.set(name, (t = tf.keep(tf.tensor(p.data, p.shape)))); // kept: a caller's tidy must not free it
    }
    return t;
  }

  /** The weights themselves, for kernels that take arrays (gpu.js's CPU mode); valid until the next step. */
  array(name: string): Float32Array {
    return this.params.get(name)!.data;
  }

  accumulate(name: string, grad: tf.Tensor): void {
    this.accumulateHost(name, readView(grad));
    grad.dispose();
  }

  accumulateArray(name: string, g: Operand): void {
    this.accumulateHost(name, g as Float32Array);
  }

  accumulateHost(name: string, g: Float32Array): void {
    const acc = this.grads.get(name)!;
    for (let j = 0; j < acc.length; j++) acc[j]! += g[j]!;
  }

  async gradSquaredNorm(): Promise<number> {
    return sumSquares(this.grads.values());
  }

  async step(lr: number, clipScale: number, t: number): Promise<void> {
    this.optimizer.step(this.params, this.grads, lr, clipScale, t);
    for (const g of this.grads.values()) g.fill(0);
    this.upload();
  }

  async state(): Promise<DeviceState> {
    const rec = <T>(m: Map<string, T>) => Object.fromEntries(m) as Record<string, T>;
    return { params: rec(this.params), m: rec(this.optimizer.state.m), v: rec(this.optimizer.state.v) };
  }

  load(state: DeviceState): void {
    checkLoad(new Map([...this.params].map(([k, p]) => [k, { shape: p.shape, size: p.data.length }])), state);
    for (const [k, p] of this.params) {
      p.data.set(state.params[k]!.data);
      if (state.m[k] && state.v[k]) {
        this.optimizer.state.m.set(k, Float32Array.from(state.m[k]!));
        this.optimizer.state.v.set(k, Float32Array.from(state.v[k]!));
      }
    }
    this.upload();
  }

  dispose(): void {
    tf.dispose([...this.weights.values()]);
    this.weights.clear();
  }
}

/** Weights, gradients and moments as tensors on the backend (the GPU); AdamW as tensor ops. */
export class BackendStore implements ExpertStore {
  private readonly w = new Map<string, tf.Tensor>();
  private readonly g = new Map<string, tf.Tensor>();
  private readonly m = new Map<string, tf.Tensor>();
  private readonly v = new Map<string, tf.Tensor>();

  constructor(private readonly config: Config, params: ParamSet) {
    for (const [k, p] of params) {
      this.w.set(k, tf.tensor(p.data, p.shape));
      this.zero(k, p.shape);
    }
  }

  private zero(k: string, shape: number[]): void {
    tf.dispose([this.g.get(k), this.m.get(k), this.v.get(k)].filter((x): x is tf.Tensor => x !== undefined));
    this.g.set(k, tf.zeros(shape));
    this.m.set(k, tf.zeros(shape));
    this.v.set(k, tf.zeros(shape));
  }

  weight(name: string): tf.Tensor {
    return this.w.get(name)!;
  }

  accumulate(name: string, grad: tf.Tensor): void {
    const old = this.g.get(name)!;
    this.g.set(name, tf.add(old, grad));
    tf.dispose([old, grad]);
  }

  async gradSquaredNorm(): Promise<number> {
    // pairwise adds: one program with every gradient as an input would exceed a GPU's buffer bindings
    const total = tf.tidy(() => [...this.g.values()].map((g) => tf.sum(tf.square(g))).reduce((a, b) => a.add(b)));
    const [s] = await total.data();
    total.dispose();
    return s!;
  }

  /**
   * AdamW's constant operands, made once: a scalar made from a number on every op is an upload each time (and
   * grows a GPU backend's memory)
   */
  private hyper?: { b1: tf.Scalar; nb1: tf.Scalar; b2: tf.Scalar; nb2: tf.Scalar; eps: tf.Scalar; wd: tf.Scalar };

  /**
   * AdamW as in optim/adamw.ts, in tensor ops (decay on matrices only); the step's own numbers go up once, in
   * one tensor.
   */
  async step(lr: number, clipScale: number, t: number): Promise<void> {
    const { beta1: b1, beta2: b2, eps, weightDecay } = adamOptions(this.config);
    this.hyper ??= {
      b1: tf.scalar(b1), nb1: tf.scalar(1 - b1), b2: tf.scalar(b2), nb2: tf.scalar(1 - b2), eps: tf.scalar(eps),
      wd: tf.scalar(weightDecay),
    };
    const h = this.hyper;
    const perStep = tf.tensor1d([clipScale, 1 / (1 - b1 ** t), 1 / (1 - b2 ** t), lr]);
    const [clip, ic1, ic2, rate] = tf.split(perStep, 4) as tf.Tensor1D[];
    for (const [k, w] of this.w) {
      const [nw, nm, nv] = tf.tidy(() => {
        const g = this.g.get(k)!.mul(clip!);
        const m = this.m.get(k)!.mul(h.b1).add(g.mul(h.nb1));
        const v = this.v.get(k)!.mul(h.b2).add(g.square().mul(h.nb2));
        const update = m.mul(ic1!).div(v.mul(ic2!).sqrt().add(h.eps));
        const decayed = w.rank >= 2 ? update.add(w.mul(h.wd)) : update;
        return [w.sub(decayed.mul(rate!)), m, v];
      });
      tf.dispose([w, this.m.get(k)!, this.v.get(k)!, this.g.get(k)!]);
      this.w.set(k, nw!);
      this.m.set(k, nm!);
      this.v.set(k, nv!);
      this.g.set(k, tf.zerosLike(nw!));
    }
    tf.dispose([perStep, clip!, ic1!, ic2!, rate!]);
  }

  async state(): Promise<DeviceState> {
    const read = async (
      m: Map<string, tf.Tensor>,
    ) => Object.fromEntries(await Promise.all([...m].map(async ([k, t]) => [
      k, await t.data() as Float32Array,
    ] as const)));
    const params = Object.fromEntries(await Promise.all([...this.w].map(async ([k, t]) => [k, {
      shape: t.shape, data: await t.data() as Float32Array,
    }] as const)));
    return { params, m: await read(this.m), v: await read(this.v) };
  }

  load(state: DeviceState): void {
    checkLoad(new Map([...this.w].map(([k, t]) => [k, { shape: t.shape, size: t.size }])), state);
    for (const [k, t] of this.w) {
      const shape = t.shape;
      t.dispose();
      this.w.set(k, tf.tensor(state.params[k]!.data, shape));
      this.zero(k, shape);
      if (state.m[k] && state.v[k]) {
        tf.dispose([this.m.get(k)!, this.v.get(k)!]);
        this.m.set(k, tf.tensor(state.m[k]!, shape));
        this.v.set(k, tf.tensor(state.v[k]!, shape));
      }
    }
  }

  dispose(): void {
    tf.dispose([
      ...this.w.values(), ...this.g.values(), ...this.m.values(), ...this.v.values(), ...Object.values(this.hyper ?? {})
    ]);
    for (const m of [this.w, this.g, this.m, this.v]) m.clear();
  }
}
