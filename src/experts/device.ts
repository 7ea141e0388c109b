import type { ComputeReport, DeviceState } from './messages.js';

/** One simulated GPU as the coordinator sees it. Slot data moves through the layer buffers. */
export interface ExpertDevice {
  readonly index: number;
  /** global indices of the experts this device owns */
  readonly experts: number[];
  /** `step`: the training step, for fault injection (parallel.fault.step) */
  forward(layer: number, capacity: number, counts: Int32Array, train: boolean, step?: number): Promise<ComputeReport>;
  backward(layer: number, capacity: number, counts: Int32Array): Promise<ComputeReport>;
  gradSquaredNorm(): Promise<number>;
  step(lr: number, clipScale: number, t: number): Promise<void>;
  state(): Promise<DeviceState>;
  load(state: DeviceState): Promise<void>;
  close(): Promise<void>;
}
