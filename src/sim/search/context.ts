import type { Config } from '../../core/config/defaults.js';
import { expertFf } from '../../core/model/trainable.js';
import { isSwitchBlock } from '../../core/model/params.js';
import { gpuCount, type Cluster } from '../cluster.js';

/** The plan section of a config: what one searched plan is. */
export type Plan = Config['plan'];

/**
 * What the search's dimensions and rules read of the model, the data and the cluster: computed once per
 * search, never per plan.
 */
export interface SearchContext {
  config: Config;
  cluster: Cluster;
  /** the cluster's GPUs, and its GPUs per node */
  gpus: number;
  gpusPerNode: number;
  layers: number;
  heads: number;
  /** key/value heads (model.n_kv_heads, or model.n_heads) */
  kvHeads: number;
  dff: number;
  dffExpert: number;
  experts: number;
  sharedExperts: number;
  /** multi-head latent attention (model.kv_lora_rank > 0) */
  mla: boolean;
  mtpLayers: number;
  /** blocks with a dense FFN (DeepSeek's first dense layers, or Switch layers every other block) */
  denseBlocks: number;
  seq: number;
  /** sequences per step: plan.global_batch, or data.batch_size */
  globalBatch: number;
  /** routing as a run recorded it (simulate --run, plan.routing recorded): what redundant experts are placed by */
  recorded: boolean;
  /** the vocabulary: model.vocab_size, or the workload's */
  vocab: number;
  /** the GPU's memory, GB; undefined: the cluster file does not say, nothing is pruned by memory */
  memoryGb?: number;
}

export function searchContext(config: Config, cluster: Cluster, vocabSize: number, recorded = false): SearchContext {
  const m = config.model;
  let denseBlocks = 0;
  for (let l = 0; l < m.n_layers; l++) if (!isSwitchBlock(config, l)) denseBlocks++;
  return {
    config, cluster, gpus: gpuCount(cluster), gpusPerNode: cluster.gpus_per_node, layers: m.n_layers, heads: m.n_heads,
    kvHeads: m.n_kv_heads || m.n_heads, dff: m.d_ff, dffExpert: expertFf(config), experts: config.moe.n_experts,
    sharedExperts: config.moe.shared_experts, mla: m.kv_lora_rank > 0, mtpLayers: m.mtp_layers, denseBlocks,
    seq: config.data.seq_len, globalBatch: config.plan.global_batch || config.data.batch_size,
    vocab: m.vocab_size || vocabSize, memoryGb: cluster.gpu.memory_gb, recorded,
  };
}

/** The divisors of n in increasing order, at most `max`. */
export function divisors(n: number, max = n): number[] {
  const out: number[] = [];
  for (let d = 1; d <= Math.min(n, max); d++) if (n % d === 0) out.push(d);
  return out;
}
