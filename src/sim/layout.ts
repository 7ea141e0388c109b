import type { Config } from '../core/config/defaults.js';
import { ConfigError } from '../core/config/errors.js';
import { isSwitchBlock } from '../core/model/params.js';
import { expertFf } from '../core/model/trainable.js';
import { gpuCount, type Cluster } from './cluster.js';
import { commGroup, type CommGroup } from './collectives/group.js';

/**
 * A config's `plan` on a cluster, with Megatron-Core's parallel folding:
 *   dense layers: N = tp · pp · dp          experts: N = etp · ep · pp · edp
 * Ranks go tp fastest (etp for experts), then dp (ep, edp), pp outermost, so tensor and expert groups
 * fill nodes first. Every rule that can fail is a one-line ConfigError naming the keys.
 */
export interface Layout {
  gpus: number;
  tp: number;
  pp: number;
  vpp: number;
  dp: number;
  ep: number;
  etp: number;
  edp: number;
  /** sequences per step, per micro-batch (per data-parallel rank), micro-batches per step */
  globalBatch: number;
  microBatch: number;
  microBatches: number;
  seq: number;
  /** tokens a GPU routes per micro-batch: its sequence-parallel share, micro_batch · seq / tp */
  tokensPerGpu: number;
  /** per pipeline stage, its blocks in order */
  stages: number[][];
  experts: number;
  expertsPerGpu: number;
  dffExpert: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  groups: { tp: CommGroup; dp: CommGroup; ep: CommGroup; etp: CommGroup; edp: CommGroup };
  /** neighbouring pipeline stages sit on different nodes */
  ppCrossesNodes: boolean;
}

/**
 * The EP group of GPU i of a pipeline stage (ranks within the stage): the ep GPUs i' ≡ i (mod etp) of
 * its block of etp·ep ranks, in order; member t holds experts t·E/ep … (t+1)·E/ep − 1.
 */
export function epGroup(L: Pick<Layout, 'ep' | 'etp'>, gpu: number): number[] {
  const block = L.etp * L.ep;
  const start = gpu - (gpu % block);
  return Array.from({ length: L.ep }, (_, t) => start + ((gpu - start) % L.etp) + t * L.etp);
}

const fail = (message: string): never => {
  throw new ConfigError(message);
};

/** plan.ep 0: as many as fit, the largest that divides both moe.n_experts and the GPUs per stage over etp. */
function autoEp(experts: number, room: number): number {
  for (let ep = Math.min(experts, room); ep >= 1; ep--) if (experts % ep === 0 && room % ep === 0) return ep;
  return 1;
}

export function resolveLayout(config: Config, cluster: Cluster, vocabSize: number): Layout {
  const p = config.plan;
  const m = config.model;
  const N = gpuCount(cluster);
  const { tp, pp, vpp, etp } = p;
  const heads = m.n_heads;
  const kvHeads = m.n_kv_heads || heads;
  const E = config.moe.n_experts;
  const dffExpert = expertFf(config);
  const show = `${cluster.name}'s ${N} GPUs`;
  if (N % (tp * pp) !== 0) fail(`plan.tp × plan.pp must divide ${show} (got ${tp} × ${pp} = ${tp * pp})`);
  if (heads % tp !== 0) fail(`plan.tp must divide model.n_heads (${heads}) (got ${tp})`);
  if (kvHeads % tp !== 0) fail(`plan.tp must divide the key/value heads (model.n_kv_heads, ${kvHeads}) (got ${tp})`);
  if (m.d_ff % tp !== 0) fail(`plan.tp must divide model.d_ff (${m.d_ff}) (got ${tp})`);
  if (config.data.seq_len % tp !== 0) fail(`plan.tp must divide data.seq_len (${config.data.seq_len}): sequence parallelism splits each sequence over tp (got ${tp})`);
  if (vpp > 1 && pp === 1) fail(`plan.vpp must be 1 without pipeline parallelism (plan.pp 1) (got ${vpp})`);
  if (vpp > 1 && m.n_layers % (pp * vpp) !== 0) fail(`plan.pp × plan.vpp must divide model.n_layers (${m.n_layers}) with interleaving (got ${pp} × ${vpp} = ${pp * vpp})`);
  if (pp > m.n_layers) fail(`plan.pp must be at most model.n_layers (${m.n_layers}) (got ${pp})`);
  const perStage = N / pp;
  if (perStage % etp !== 0) fail(`plan.etp must divide the GPUs of a pipeline stage (${perStage}) (got ${etp})`);
  if (dffExpert % etp !== 0) fail(`plan.etp must divide the experts' hidden size (${dffExpert}) (got ${etp})`);
  const ep = p.ep || autoEp(E, perStage / etp);
  if (E % ep !== 0) fail(`plan.ep must divide moe.n_experts (${E}) (got ${ep})`);
  if ((perStage / etp) % ep !== 0) fail(`plan.ep × plan.etp must divide the GPUs of a pipeline stage (${perStage}) (got ${ep} × ${etp})`);
  const dp = perStage / tp;
  const edp = perStage / (etp * ep);
  const globalBatch = p.global_batch || config.data.batch_size;
  if (globalBatch % dp !== 0) fail(`plan.global_batch (or data.batch_size) must be divisible by the data-parallel ranks (${dp} = ${N} GPUs / (tp ${tp} · pp ${pp})) (got ${globalBatch})`);
  const microBatch = p.micro_batch || globalBatch / dp;
  if ((globalBatch / dp) % microBatch !== 0) fail(`plan.micro_batch must divide the sequences of a data-parallel rank (${globalBatch / dp}) (got ${microBatch})`);
  if (p.precision === 'fp8' && cluster.gpu.tflops_fp8 === undefined) fail(`plan.precision fp8 needs the cluster's gpu.tflops_fp8 (${cluster.name} has none) (got "fp8")`);
  // as even as it goes: the first n_layers mod pp stages take one block more (Megatron-Core's uneven split)
  const blocks = Array.from({ length: m.n_layers }, (_, l) => l);
  const base = Math.floor(m.n_layers / pp);
  const extra = m.n_layers % pp;
  const stages = Array.from({ length: pp }, (_, s) => {
    const from = s * base + Math.min(s, extra);
    return blocks.slice(from, from + base + (s < extra ? 1 : 0));
  });
  if (!blocks.some((l) => isSwitchBlock(config, l))) fail('model.switch_every must leave at least one Switch layer after model.first_dense_layers (got none)');
  return {
    gpus: N, tp, pp, vpp, dp, ep, etp, edp, globalBatch, microBatch, microBatches: globalBatch / dp / microBatch, seq: config.data.seq_len,
    tokensPerGpu: (microBatch * config.data.seq_len) / tp, stages, experts: E, expertsPerGpu: E / ep, dffExpert,
    heads, kvHeads, headDim: m.head_dim || m.d_model / heads, vocab: m.vocab_size || vocabSize,
    groups: {
      tp: commGroup(cluster, tp, 1),
      dp: commGroup(cluster, dp, tp),
      ep: commGroup(cluster, ep, etp),
      etp: commGroup(cluster, etp, 1),
      edp: commGroup(cluster, edp, etp * ep),
    },
    ppCrossesNodes: pp > 1 && perStage >= cluster.gpus_per_node,
  };
}
