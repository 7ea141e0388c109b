import { Piscina } from 'piscina';
import { workerStart } from '../threads/worker-file.js';
import type { Config } from '../../core/config/defaults.js';
import { view, type LayerBuffers } from '../../core/comm/buffers.js';
import { extractDeviceSlots, insertDeviceSlots, type DeviceSlots } from '../../core/comm/slots.js';
import { DeviceError } from './errors.js';
import { faultDue } from './fault.js';
import { prepareDawnEnvironment } from '../../core/backend/dawn.js';
import { BackendError } from '../../core/backend/errors.js';
import { expertsOf } from '../../core/router/placement.js';
import type { ExchangeRequest, ExpertDevice } from './device.js';
import type { ComputeReport, DeviceMemory, DeviceRequest, DeviceState, DeviceTiming,
  GradNormReport } from './messages.js';

function reason(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

/**
 * `parallel.transport: threads`: a device is a worker thread (a single-thread piscina pool) that
 * owns its experts. Slot data moves through the shared layer buffers (payload 'shared'), or as a
 * per-device copy moved with a transfer list ('transfer') or structured-cloned ('clone').
 */
export class ThreadDevice implements ExpertDevice {
  readonly experts: number[];
  private closed = false;

  private constructor(
    private readonly config: Config,
    readonly index: number,
    private readonly pool: Piscina,
    private readonly buffers: LayerBuffers[],
  ) {
    this.experts = expertsOf(config, index);
  }

  static async start(config: Config, index: number, switchBlocks: number[],
    buffers: LayerBuffers[]): Promise<ThreadDevice> {
    const pool = new Piscina({
      ...(await workerStart(config.parallel.backend)), name: 'device', minThreads: 1, maxThreads: 1,
      idleTimeout: Number.MAX_SAFE_INTEGER,
    });
    const dev = new ThreadDevice(config, index, pool, buffers);
    const info = await dev.call<{ backend: string; simd: boolean }>(
      { kind: 'init', config, device: index, switchBlocks, buffers }, 'init').catch(async (e: DeviceError) => {
      await dev.close();
      // a backend that cannot start is bad input (exit 2, with what to install), not a device failure
      const why = /(parallel\.backend .*)$/.exec(e.message);
      throw why ? new BackendError(why[1]!) : e;
    });
    if (process.env.SWITCH_SIM_DEBUG) console.error(`device ${index}: backend ${info.backend}, simd ${info.simd}`);
    return dev;
  }

  /** Starting a worker loads the TypeScript loader and tfjs: it gets at least a minute. */
  private deadline(kind: string): number {
    return kind === 'init' ? Math.max(60_000, this.config.parallel.timeout_ms) : this.config.parallel.timeout_ms;
  }

  /** One request with the device's deadline; any failure becomes a DeviceError naming the device. */
  private async call<T>(req: DeviceRequest & { transfer?: boolean }, phase: string, layer?: number,
    transferList?: ArrayBuffer[]): Promise<T> {
    if (this.closed) throw new DeviceError(this.index, this.experts, phase, layer, 'device already shut down');
    // one timer per request, cleared as soon as the device answers (AbortSignal.timeout would keep a
    // timer and its signal alive for the whole deadline after every call: thousands at a time)
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('no answer (timed out)')), this.deadline(req.kind));
    try {
      return (await this.pool.run(req, { signal: abort.signal, transferList })) as T;
    } catch (e) {
      const why = abort.signal.aborted
        ? `no answer within ${req.kind === 'init'
          ? `${this.deadline('init')} ms (startup)`
          : `parallel.timeout_ms = ${this.config.parallel.timeout_ms} ms`}`
        : reason(e);
      throw new DeviceError(this.index, this.experts, phase, layer, why);
    } finally {
      clearTimeout(timer);
    }
  }

  private slots(layer: number, req: ExchangeRequest): DeviceSlots {
    const shape = this.buffers[layer]!.shape;
    return {
      firstGroup: req.firstGroup, counts: req.counts, experts: shape.experts, stride: shape.capacity,
      capacity: req.capacity, dModel: shape.dModel, first: this.experts[0]!, count: this.experts.length,
    };
  }

  private async exchange(kind: 'forward' | 'backward' | 'touch', req: ExchangeRequest): Promise<ComputeReport> {
    const { layer, capacity, counts, train, step, firstGroup } = req;
    const payload = this.config.parallel.payload;
    const [inDir, outDir] = kind === 'backward' ? (['gradOut', 'gradIn'] as const) : (['dispatch', 'combine'] as const);
    const fault = faultDue(this.config, this.index, kind, req);
    if (fault) await this.call({ kind: 'fault', fault }, kind, layer);
    const base = { kind, layer, micro: req.micro, firstGroup, capacity, counts, train, step } as const;
    if (payload === 'shared') return this.call<ComputeReport>(base as DeviceRequest, kind, layer);
    // a compact copy of this exchange's rows only: replies never touch another micro-batch's groups
    const slots = this.slots(layer, req);
    const data = extractDeviceSlots(view(this.buffers[layer]![inDir]), slots);
    const transfer = payload === 'transfer';
    const r = await this.call<ComputeReport>(
      { ...base, payload: data, transfer } as DeviceRequest & { transfer: boolean },
      kind, layer, transfer ? [data.buffer as ArrayBuffer] : undefined);
    insertDeviceSlots(view(this.buffers[layer]![outDir]), r.payload!, slots);
    return r;
  }

  forward(req: ExchangeRequest): Promise<ComputeReport> {
    return this.exchange('forward', req);
  }

  backward(req: ExchangeRequest): Promise<ComputeReport> {
    return this.exchange('backward', req);
  }

  touch(req: ExchangeRequest): Promise<ComputeReport> {
    return this.exchange('touch', req);
  }

  gradSquaredNorm(): Promise<GradNormReport> {
    return this.call({ kind: 'grad_norm' }, 'gradient norm');
  }

  step(lr: number, clipScale: number, t: number): Promise<DeviceTiming> {
    return this.call({ kind: 'step', lr, clipScale, t }, 'optimizer step');
  }

  clock(): Promise<number> {
    return this.call({ kind: 'clock' }, 'clock');
  }

  memory(): Promise<DeviceMemory> {
    return this.call({ kind: 'memory' }, 'memory');
  }

  state(): Promise<DeviceState> {
    return this.call({ kind: 'state' }, 'state');
  }

  async load(state: DeviceState): Promise<void> {
    await this.call({ kind: 'load', state }, 'load');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // a device that still answers frees its backend first; one that crashed or hangs is just torn down
    if (this.config.parallel.backend === 'webgpu' || this.config.parallel.backend === 'gpujs')
      await this.call({ kind: 'close' }, 'close').catch(() => undefined);
    this.closed = true;
    await this.pool.destroy();
  }
}

/** Starts every device; if one fails to start, the others are shut down before the error is thrown. */
export async function startThreadDevices(config: Config, switchBlocks: number[],
  buffers: LayerBuffers[]): Promise<ExpertDevice[]> {
  // before the threads start: they copy the environment
  if (config.parallel.backend === 'webgpu' || config.parallel.backend === 'gpujs') prepareDawnEnvironment();
  const started = await Promise.allSettled(
    Array.from({ length: config.parallel.devices }, (_, i) => ThreadDevice.start(config, i, switchBlocks, buffers)),
  );
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    for (const s of started) if (s.status === 'fulfilled') await s.value.close(); // one at a time (see Session.close)
    throw (failed as PromiseRejectedResult).reason;
  }
  return started.map((s) => (s as PromiseFulfilledResult<ThreadDevice>).value);
}
