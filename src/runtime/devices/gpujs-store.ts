import type { Config } from '../../core/config/defaults.js';
import type { ParamSet } from '../../core/model/params.js';
import { adamMoment, adamSecondMoment, adamUpdate, add, chunkSquares } from './gpujs-kernels.js';
import type { GpuJsRuntime, Operand, Resident } from './gpujs-runtime.js';
import type { DeviceState } from './messages.js';
import { checkLoad, type KernelStore } from './store.js';

/** Σg² is summed in chunks of this many values on the GPU; the partial sums come back */
const CHUNK = 256;

/**
 * The experts' weights, gradients and AdamW moments as gpu.js resident buffers on WebGPU
 * (`parallel.backend: gpujs` with an adapter). Gradients accumulate there, AdamW (optim/adamw.ts's
 * equations, in float32) runs there as three kernels per parameter, and only Σ‖g‖²'s partial sums and
 * checkpoints come back. A parameter that got no gradient this step steps with zeros, as on the host.
 */
export class GpuJsStore implements KernelStore {
  private readonly w = new Map<string, Resident>();
  private readonly g = new Map<string, Resident>();
  private readonly m = new Map<string, Resident>();
  private readonly v = new Map<string, Resident>();
  private readonly shapes = new Map<string, number[]>();
  /** one zero buffer per size: moments before a first step, and the gradient of a parameter nobody touched */
  private readonly zeros = new Map<number, Resident>();

  private constructor(private readonly config: Config, private readonly rt: GpuJsRuntime) {}

  static async open(config: Config, rt: GpuJsRuntime, params: ParamSet): Promise<GpuJsStore> {
    const s = new GpuJsStore(config, rt);
    for (const [k, p] of params) {
      s.shapes.set(k, p.shape);
      s.w.set(k, (await rt.upload(p.data)) as Resident);
    }
    return s;
  }

  private async zero(size: number): Promise<Resident> {
    let z = this.zeros.get(size);
    if (!z) {
      z = (await this.rt.upload(new Float32Array(size))) as Resident;
      this.zeros.set(size, z);
    }
    return z;
  }

  array(name: string): Operand {
    return this.w.get(name)!;
  }

  /** adds an expert's gradient for one parameter; the store takes the buffer */
  async accumulateArray(name: string, grad: Operand): Promise<void> {
    const old = this.g.get(name);
    if (!old) {
      this.g.set(name, grad as Resident);
      return;
    }
    const size = sizeOf(old);
    this.g.set(name, (await this.rt.run(this.rt.kernel(`add/${size}`, add, [size]), old, grad)) as Resident);
    this.rt.release(old, grad);
  }

  async gradSquaredNorm(): Promise<number> {
    let s = 0;
    for (const g of this.g.values()) {
      const size = sizeOf(g);
      const n = Math.ceil(size / CHUNK);
      const part = await this.rt.run(this.rt.kernel(`sq/${size}`, chunkSquares, [n], { chunk: CHUNK, size }), g);
      for (const x of await this.rt.download(part)) s += x;
      this.rt.release(part);
    }
    return s;
  }

  async step(lr: number, clipScale: number, t: number): Promise<void> {
    const { beta1: b1, beta2: b2, weight_decay } = this.config.train;
    const base = [clipScale, b1, b2, lr, 1 - b1 ** t, 1 - b2 ** t, 1e-8];
    const rt = this.rt;
    for (const [k, w] of this.w) {
      const size = sizeOf(w);
      const h = Float32Array.from([...base, this.shapes.get(k)!.length >= 2 ? weight_decay : 0]);
      const g = this.g.get(k) ?? (await this.zero(size));
      const m = this.m.get(k) ?? (await this.zero(size));
      const v = this.v.get(k) ?? (await this.zero(size));
      const nm = (await rt.run(rt.kernel(`adam.m/${size}`, adamMoment, [size]), m, g, h)) as Resident;
      const nv = (await rt.run(rt.kernel(`adam.v/${size}`, adamSecondMoment, [size]), v, g, h)) as Resident;
      const nw = (await rt.run(rt.kernel(`adam.w/${size}`, adamUpdate, [size]), w, nm, nv, h)) as Resident;
      rt.release(w, this.g.get(k), this.m.get(k), this.v.get(k));
      this.w.set(k, nw);
      this.m.set(k, nm);
      this.v.set(k, nv);
      this.g.delete(k);
    }
  }

  async state(): Promise<DeviceState> {
    const params: DeviceState['params'] = {};
    const m: DeviceState['m'] = {};
    const v: DeviceState['v'] = {};
    for (const [k, w] of this.w) {
      params[k] = { shape: this.shapes.get(k)!, data: await this.rt.download(w) };
      const [mk, vk] = [this.m.get(k), this.v.get(k)];
      if (mk && vk) [m[k], v[k]] = [await this.rt.download(mk), await this.rt.download(vk)];
    }
    return { params, m, v };
  }

  async load(state: DeviceState): Promise<void> {
    checkLoad(new Map([...this.shapes].map(([k, shape]) => [k, { shape, size: shape.reduce((a, b) => a * b, 1) }])),
      state);
    for (const k of this.shapes.keys()) {
      this.rt.release(this.w.get(k), this.g.get(k), this.m.get(k), this.v.get(k));
      this.g.delete(k);
      this.m.delete(k);
      this.v.delete(k);
      this.w.set(k, (await this.rt.upload(state.params[k]!.data)) as Resident);
      if (state.m[k] && state.v[k]) {
        this.m.set(k, (await this.rt.upload(Float32Array.from(state.m[k]!))) as Resident);
        this.v.set(k, (await this.rt.upload(Float32Array.from(state.v[k]!))) as Resident);
      }
    }
  }

  dispose(): void {
    for (const map of [this.w, this.g, this.m, this.v, this.zeros]) {
      this.rt.release(...map.values());
      map.clear();
    }
  }
}

const sizeOf = (r: Resident) => r.output.reduce((a, b) => a * b, 1);
