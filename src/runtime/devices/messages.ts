import type { Config } from '../../core/config/defaults.js';
import type { LayerBuffers } from '../../core/comm/buffers.js';

/** The messages a device understands. Slot data travels in the layer's shared buffers; these carry counts. */
export interface InitRequest {
  kind: 'init';
  config: Config;
  device: number;
  /** block index of each Switch layer */
  switchBlocks: number[];
  buffers: LayerBuffers[];
}

/** One exchange of a Switch layer, as the device receives it. */
export interface ExchangeMessage {
  layer: number;
  /** micro-batch: activations are kept per (layer, micro-batch) */
  micro: number;
  /** first group of this exchange in the layer's buffers (micro-batches hold disjoint groups) */
  firstGroup: number;
  /** the plan's capacity C: the row stride of a compact payload */
  capacity: number;
  /** [groups·E] kept tokens per (group, expert), for groups firstGroup.. of this exchange only */
  counts: Int32Array;
  /** the training step (-1 outside training), for fault injection */
  step: number;
  /** payload 'transfer' | 'clone': this device's rows, [groups, E_local, C, d]; absent for 'shared' */
  payload?: Float32Array;
}

export interface ForwardRequest extends ExchangeMessage {
  kind: 'forward';
  /** keep activations for a backward pass (training) */
  train: boolean;
}

export interface BackwardRequest extends ExchangeMessage {
  kind: 'backward';
}

export interface GradNormRequest {
  kind: 'grad_norm';
}

/** Before the thread ends: free the experts and the backend (a GPU device must be destroyed before its thread goes). */
export interface CloseRequest {
  kind: 'close';
}

/** What the device's tfjs backend holds: live tensors and their bytes (memory must stay flat over a run). */
export interface MemoryRequest {
  kind: 'memory';
}

export interface DeviceMemory {
  tensors: number;
  bytes: number;
  /** the device thread's V8 heap in use, MB */
  heap_mb: number;
}

/** Clock probe: the device answers with its absolute time (profiling aligns the clocks with it). */
export interface ClockRequest {
  kind: 'clock';
}

export interface StepRequest {
  kind: 'step';
  lr: number;
  /** global-norm clipping scale, the same on every device and the coordinator */
  clipScale: number;
  /** optimizer step number, from 1 */
  t: number;
}

export interface StateRequest {
  kind: 'state';
}

export interface LoadRequest {
  kind: 'load';
  state: DeviceState;
}

/** Fault injection (parallel.fault.*): what the device does when asked to misbehave. */
export interface FaultRequest {
  kind: 'fault';
  fault: 'crash' | 'hang' | 'throw';
}

export type FaultKind = FaultRequest['fault'] | 'slow';

export type DeviceRequest =
  | InitRequest | ForwardRequest | BackwardRequest | TouchRequest | GradNormRequest | ClockRequest | CloseRequest
    | MemoryRequest | StepRequest | StateRequest | LoadRequest | FaultRequest;

/**
 * The all-to-all alone (`switch-sim bench dispatch`): the device reads its rows and writes them back, no
 * expert math.
 */
export interface TouchRequest extends ExchangeMessage {
  kind: 'touch';
}

/** When a device did something, on its own clock: absolute epoch milliseconds (performance.timeOrigin + now). */
export interface DeviceTiming {
  start: number;
  end: number;
}

export interface GradNormReport extends DeviceTiming {
  /** Σ‖grad‖² over the device's experts */
  value: number;
}

/** What a forward or backward call reports back. */
export interface ComputeReport extends DeviceTiming {
  device: number;
  /** time spent computing, excluding message passing (end − start) */
  computeMs: number;
  /** of computeMs: slot rows into the backend's tensors, and results back (a GPU's PCIe cost shows here) */
  uploadMs: number;
  downloadMs: number;
  /** the upload and download spans themselves, on the device's clock */
  segments: { name: 'upload' | 'download'; start: number; end: number }[];
  /** token rows computed, over all of the device's experts */
  rows: number;
  /** the device's output rows, [groups, E_local, C, d], for payloads other than 'shared' */
  payload?: Float32Array;
}

export interface SerializedParam {
  shape: number[];
  data: Float32Array;
}

/** Everything a device owns, for checkpoints: expert weights and their AdamW moments, by parameter name. */
export interface DeviceState {
  params: Record<string, SerializedParam>;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}
