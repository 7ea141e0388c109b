import type { Config } from '../../core/config/defaults.js';
import type { LayerBuffers } from '../../core/comm/buffers.js';
import type { ReduceBuffers } from './reduce.js';
import type { LayerStats } from '../coordinator/layer-stats.js';
import type { DeviceMemory, DeviceState } from '../devices/messages.js';
import type { Span, Traffic } from '../../core/instrument/recorder.js';

/** The messages between the main thread and an spmd device (a worker thread running a replica). */

/** Starts replica `rank`: the shared memory every device uses (slots, counts, barrier, gradient reduction). */
export interface ReplicaInit {
  kind: 'init';
  config: Config;
  rank: number;
  vocabSize: number;
  switchBlocks: number[];
  buffers: LayerBuffers[];
  /** per Switch layer, Int32 [D·E]: kept tokens per (source group, expert) */
  counts: SharedArrayBuffer[];
  barrier: SharedArrayBuffer;
  /** the dense gradients' rows and the experts' shares of Σ‖g‖², in two generations */
  reduce: ReduceBuffers;
}

/** Forward and backward of this device's shard (`batch` sequences of the step's batch, from sequence rank·batch). */
export interface ShardStepRequest {
  kind: 'train';
  x: Int32Array;
  y: Int32Array;
  batch: number;
  step: number;
  /** record this step's spans (returned with the optimizer step's report) */
  profile?: boolean;
  /**
   * The optimizer step's learning rate, when it is to follow at once (one request a step, not two); without
   * it the main thread sends an OptimizerRequest.
   */
  lr?: number;
  /** false: this step's statistics are not written, and router_entropy is left uncomputed (NaN) */
  logged?: boolean;
}

/**
 * All-reduce the dense gradients, clip by the global norm, one AdamW step of the replica and of this device's
 * experts.
 */
export interface OptimizerRequest {
  kind: 'step';
  lr: number;
  t: number;
}

export interface ShardEvalRequest {
  kind: 'eval';
  x: Int32Array;
  y: Int32Array;
  batch: number;
  step: number;
}

/** dense: replica 0 sends its dense weights and moments (replicas are identical); every device sends its experts */
export interface StateRequest {
  kind: 'state';
  dense: boolean;
}

export interface LoadRequest {
  kind: 'load';
  dense: DeviceState;
  experts: DeviceState;
}

export interface SimpleRequest {
  kind: 'memory' | 'close' | 'digest';
}

export type ReplicaRequest = ReplicaInit | ShardStepRequest | OptimizerRequest | ShardEvalRequest | StateRequest
  | LoadRequest | SimpleRequest;

/** A shard's losses (unscaled: the main thread averages over devices) and its Switch layers' statistics. */
export interface ShardStepReport {
  ce: number;
  balance_loss: number;
  z_loss: number;
  layers: LayerStats[];
  /** the shard's forward and backward, wall ms */
  ms: number;
  /** with ShardStepRequest.lr: the optimizer step that followed */
  update?: OptimizerReport;
}

export interface OptimizerReport {
  grad_norm: number;
  /** the dense gradients summed over devices and the global norm (reduce.ts), its barrier wait included */
  allreduce_ms: number;
  /** of which waiting at its one barrier */
  allreduce_wait_ms: number;
  /**
   * waiting before the global norm is known: the same barrier and the same number as allreduce_wait_ms since
   * the sum and the norm share it (kept so that metrics lines keep their keys; never add the two)
   */
  norm_wait_ms: number;
  /** AdamW on the replica and the experts */
  optimizer_ms: number;
  /** a profiled step's spans and traffic, times on this thread's clock (performance.now() from `timeOrigin`) */
  profile?: { timeOrigin: number; spans: Span[]; traffic: Traffic[] };
}

export interface ShardEvalReport {
  ce: number;
  layers: LayerStats[];
}

export interface ReplicaState {
  dense?: DeviceState;
  experts: DeviceState;
}

export type { DeviceMemory };
