import type { Config } from '../../core/config/defaults.js';
import type { LayerBuffers } from '../../core/comm/buffers.js';
import { DeviceHost, threadMemory } from './device-host.js';
import type { ExchangeRequest, ExpertDevice } from './device.js';
import type { ComputeReport, DeviceMemory, DeviceState, DeviceTiming, GradNormReport } from './messages.js';
import { absoluteNow } from '../../core/instrument/recorder.js';
import { LocalFaults } from './fault.js';

/**
 * `parallel.transport: local`: the device runs in the coordinator's thread; the reference implementation.
 * Injected faults (parallel.fault) fail it as they fail a worker thread.
 */
export class LocalDevice implements ExpertDevice {
  private readonly host: DeviceHost;
  private readonly faults: LocalFaults;

  constructor(config: Config, readonly index: number, switchBlocks: number[], buffers: LayerBuffers[]) {
    this.host = new DeviceHost(config, index, switchBlocks, buffers);
    this.faults = new LocalFaults(config, index, this.host.experts);
  }

  get experts(): number[] {
    return this.host.experts;
  }

  async forward(req: ExchangeRequest): Promise<ComputeReport> {
    await this.faults.inject('forward', req);
    return this.host.forward({ kind: 'forward', ...req });
  }

  async backward(req: ExchangeRequest): Promise<ComputeReport> {
    await this.faults.inject('backward', req);
    return this.host.backward({ kind: 'backward', ...req });
  }

  async touch(req: ExchangeRequest): Promise<ComputeReport> {
    await this.faults.inject('touch', req);
    return this.host.touch({ kind: 'touch', ...req });
  }

  async gradSquaredNorm(): Promise<GradNormReport> {
    this.faults.check('gradient norm');
    return this.host.gradSquaredNorm();
  }

  async step(lr: number, clipScale: number, t: number): Promise<DeviceTiming> {
    this.faults.check('optimizer step');
    return this.host.step(lr, clipScale, t);
  }

  async clock(): Promise<number> {
    return absoluteNow();
  }

  async memory(): Promise<DeviceMemory> {
    return threadMemory(this.host); // the coordinator's thread: its tensors count too
  }

  async state(): Promise<DeviceState> {
    this.faults.check('state');
    return this.host.state();
  }

  async load(state: DeviceState): Promise<void> {
    this.faults.check('load');
    await this.host.load(state);
  }

  async close(): Promise<void> {
    this.host.dispose();
  }
}
