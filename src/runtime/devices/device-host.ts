import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import type { LayerBuffers } from '../../core/comm/buffers.js';
import { initExpertParams, type ParamSet } from '../../core/model/params.js';
import { expertsOf } from '../../core/router/placement.js';
import { expertFf, trainedActivation } from '../../core/model/trainable.js';
import { getHeapStatistics } from 'node:v8';
import type {
  BackwardRequest, ComputeReport, DeviceMemory, DeviceState, DeviceTiming, ForwardRequest, GradNormReport, TouchRequest,
} from './messages.js';
import { BackendStore, HostStore, type ExpertStore, type KernelStore } from './store.js';
import { GpuJsExperts } from './gpujs-ffn.js';
import { openGpuJs, type GpuJsRuntime } from './gpujs-runtime.js';
import { GpuJsStore } from './gpujs-store.js';
import { ExpertPasses, type Kernels } from './expert-passes.js';
import { absoluteNow } from '../../core/instrument/recorder.js';

/** A thread's memory report: tfjs's tensors and, on gpu.js's WebGPU mode, the host's resident buffers. */
export function threadMemory(host?: DeviceHost): DeviceMemory {
  const m = tf.memory();
  const r = host?.residentBuffers ?? { count: 0, bytes: 0 };
  return { tensors: m.numTensors + r.count, bytes: m.numBytes + r.bytes,
    heap_mb: +(getHeapStatistics().used_heap_size / 2 ** 20).toFixed(1) };
}

function deviceParams(config: Config, switchBlocks: number[], experts: number[]): ParamSet {
  const params: ParamSet = new Map();
  for (const block of switchBlocks) {
    for (const e of experts) for (const [k, p] of initExpertParams(config, block, e)) params.set(k, p);
  }
  return params;
}

/**
 * A device: owns its experts' weights, gradients and AdamW state (in an ExpertStore: host memory on
 * wasm and cpu, the backend's memory on a GPU) and runs their forward and backward on the slots it
 * is sent (ExpertPasses). The same class serves the in-process transport and the worker-thread transport.
 */
export class DeviceHost {
  readonly experts: number[];
  /** tfjs backends: the store whose weights are tensors */
  private readonly store?: ExpertStore;
  /** parallel.backend gpujs: the FFN as gpu.js kernels and its store */
  private readonly kernels?: Kernels;
  private readonly passes: ExpertPasses;

  constructor(
    config: Config,
    readonly device: number,
    switchBlocks: number[],
    buffers: LayerBuffers[],
    backend = tf.getBackend(),
    kernels?: Kernels,
  ) {
    this.experts = expertsOf(config, device);
    // wasm and cpu compute in this thread's memory: results are read synchronously, shapes need no buckets
    const onHost = backend === 'wasm' || backend === 'cpu';
    if (kernels) this.kernels = kernels;
    else {
      const params = deviceParams(config, switchBlocks, this.experts);
      this.store = onHost ? new HostStore(config, params) : new BackendStore(config, params);
    }
    const target = { device, experts: this.experts, switchBlocks, buffers, onHost, store: this.store,
      kernels: this.kernels };
    this.passes = new ExpertPasses(config, target);
  }

  /**
   * A device on its configured backend. gpujs opens gpu.js here: on WebGPU its weights, gradients and
   * moments go to the GPU (GpuJsStore); in gpu.js's CPU mode they stay in host arrays (HostStore).
   */
  static async open(config: Config, device: number, switchBlocks: number[],
    buffers: LayerBuffers[]): Promise<DeviceHost> {
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

  /** o = FFN_e(x) for every local expert e on its slots; writes the combine slots. */
  forward(req: ForwardRequest): Promise<ComputeReport> {
    return this.passes.forward(req);
  }

  /** ∂L/∂x for every local expert's slots; the weight gradients accumulate in the store. */
  backward(req: BackwardRequest): Promise<ComputeReport> {
    return this.passes.backward(req);
  }

  /** The all-to-all alone: copies each local expert's rows from the dispatch slots to the combine slots. */
  touch(req: TouchRequest): ComputeReport {
    return this.passes.touch(req);
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
    this.passes.dispose();
    this.core.dispose();
    this.kernels?.ffn.runtime.dispose();
  }
}
