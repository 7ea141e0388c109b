import type { ComputeReport, DeviceMemory, DeviceState, DeviceTiming, GradNormReport } from './messages.js';

/** One exchange of a Switch layer: which slots hold tokens, and for which micro-batch. */
export interface ExchangeRequest {
  layer: number;
  /** micro-batch index: each keeps its own activations on the device until its backward */
  micro: number;
  /** first group of this exchange in the layer's buffers */
  firstGroup: number;
  /** the plan's capacity C (at most the buffers' stride) */
  capacity: number;
  /** [groups·E] tokens per (group, expert), for this exchange's groups only */
  counts: Int32Array;
  train: boolean;
  /** the training step (-1 outside training), for fault injection (parallel.fault.step) */
  step: number;
}

/** One simulated GPU as the coordinator sees it. Slot data moves through the layer buffers. */
export interface ExpertDevice {
  readonly index: number;
  /** global indices of the experts this device owns */
  readonly experts: number[];
  forward(req: ExchangeRequest): Promise<ComputeReport>;
  backward(req: ExchangeRequest): Promise<ComputeReport>;
  /** the all-to-all without expert math: rows copied from dispatch to combine (bench dispatch) */
  touch(req: ExchangeRequest): Promise<ComputeReport>;
  gradSquaredNorm(): Promise<GradNormReport>;
  step(lr: number, clipScale: number, t: number): Promise<DeviceTiming>;
  /** the device's absolute time (epoch ms), to align its clock with the coordinator's */
  clock(): Promise<number>;
  /** live tensors on the device's backend */
  memory(): Promise<DeviceMemory>;
  state(): Promise<DeviceState>;
  load(state: DeviceState): Promise<void>;
  close(): Promise<void>;
}
