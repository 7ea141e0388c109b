import type { Config } from '../core/config/defaults.js';
import { ConfigError } from '../core/config/errors.js';
import { pipelineSplit, planSplitInput, type PipelineSplit } from '../core/config/pipeline-split.js';
import { isSwitchBlock } from '../core/model/params.js';
import { expertFf } from '../core/model/trainable.js';
import { gpuCount, type Cluster } from './cluster.js';
import { commGroup, type CommGroup } from './collectives/group.js';

/**
 * A config's `plan` on a cluster, with Megatron-Core's parallel folding (megatron/core/parallel_state.py: two
 * rank grids over the same GPUs):
 *   dense layers: N = tp · cp · dp · pp          experts: N = etp · ep · edp · pp
 * Ranks go tp fastest (etp for experts), then cp, then dp (ep, edp), pp outermost, so tensor, context and expert
 * groups fill nodes first. Dense gradients are reduced over dp · cp (context-parallel ranks hold the same dense
 * weights: Megatron-Core's dp-cp group). Every rule that can fail is a one-line ConfigError naming the keys.
 */
export interface Layout {
  gpus: number;
  tp: number;
  cp: number;
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
  /** tokens of one sequence on one GPU: data.seq_len / cp (context parallelism's share; everything but attention's keys) */
  seq: number;
  /** the whole sequence, data.seq_len: the keys each query attends to, and the tokens a step counts */
  seqLen: number;
  /** tokens a GPU routes per micro-batch: its sequence-parallel share, micro_batch · seq_len / (cp · tp) */
  tokensPerGpu: number;
  /** per pipeline rank, its blocks in execution order (its virtual stages in turn; the MTP blocks last on the last rank) */
  stages: number[][];
  /** which blocks each rank and virtual stage builds (src/core/config/pipeline-split.ts) */
  split: PipelineSplit;
  /** multi-token prediction's blocks, numbered after the model's (n_layers, n_layers + 1, …), on the last rank */
  mtpBlocks: number[];
  experts: number;
  expertsPerGpu: number;
  dffExpert: number;
  heads: number;
  kvHeads: number;
  /** a query/key head's size (MLA: qk_nope_head_dim + qk_rope_head_dim) */
  headDim: number;
  vocab: number;
  /** dp: the dense gradients' group (dp · cp ranks at stride tp); cp: a sequence's ranks (stride tp) */
  groups: { tp: CommGroup; cp: CommGroup; dp: CommGroup; ep: CommGroup; etp: CommGroup; edp: CommGroup };
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

/**
 * Each rank's blocks from the one split (pipelineSplit: Megatron-Core's first/last counts and embedding/loss slots,
 * or switch-sim's remainder split where Megatron-Core refuses), its chunks in execution order; the MTP blocks go
 * after the last rank's last chunk (Megatron-Core builds multi-token prediction on the last pipeline stage).
 */
function rankBlocks(config: Config, split: PipelineSplit): { stages: number[][]; mtpBlocks: number[] } {
  const n = config.model.n_layers;
  const stages = split.chunks.map((chunks) => chunks.flatMap((c) => Array.from({ length: c.count }, (_, i) => c.start + i)));
  const mtpBlocks = Array.from({ length: config.model.mtp_layers }, (_, i) => n + i);
  stages[stages.length - 1]!.push(...mtpBlocks);
  return { stages, mtpBlocks };
}

export function resolveLayout(config: Config, cluster: Cluster, vocabSize: number): Layout {
  const p = config.plan;
  const m = config.model;
  const N = gpuCount(cluster);
  const { tp, cp, pp, vpp, etp } = p;
  const mla = m.kv_lora_rank > 0;
  const heads = m.n_heads;
  const kvHeads = mla ? heads : m.n_kv_heads || heads;
  const E = config.moe.n_experts;
  const dffExpert = expertFf(config);
  const seqLen = config.data.seq_len;
  const show = `${cluster.name}'s ${N} GPUs`;
  if (N % (tp * cp * pp) !== 0) {
    fail(cp > 1 ? `plan.tp × plan.cp × plan.pp must divide ${show} (got ${tp} × ${cp} × ${pp} = ${tp * cp * pp})`
      : `plan.tp × plan.pp must divide ${show} (got ${tp} × ${pp} = ${tp * pp})`);
  }
  if (heads % tp !== 0) fail(`plan.tp must divide model.n_heads (${heads}) (got ${tp})`);
  if (kvHeads % tp !== 0) fail(`plan.tp must divide the key/value heads (model.n_kv_heads, ${kvHeads}) (got ${tp})`);
  if (m.d_ff % tp !== 0) fail(`plan.tp must divide model.d_ff (${m.d_ff}) (got ${tp})`);
  if (cp > 1 && seqLen % (2 * cp) !== 0) {
    fail(`plan.cp must be 1 or have 2 · plan.cp divide data.seq_len (${seqLen}): Megatron-Core cuts each sequence into `
      + `2 · cp chunks (got ${cp})`);
  }
  if ((seqLen / cp) % tp !== 0) {
    fail(`plan.tp must divide data.seq_len${cp > 1 ? ' / plan.cp' : ''} (${seqLen / cp}): sequence parallelism splits `
      + `each sequence${cp > 1 ? "'s context-parallel share" : ''} over tp (got ${tp})`);
  }
  const split = pipelineSplit(planSplitInput(config)); // its refusals are one-line ConfigErrors naming the key
  const perStage = N / pp;
  if (perStage % etp !== 0) fail(`plan.etp must divide the GPUs of a pipeline stage (${perStage}) (got ${etp})`);
  if (dffExpert % etp !== 0) fail(`plan.etp must divide the experts' hidden size (${dffExpert}) (got ${etp})`);
  const ep = p.ep || autoEp(E, perStage / etp);
  if (E % ep !== 0) fail(`plan.ep must divide moe.n_experts (${E}) (got ${ep})`);
  if ((perStage / etp) % ep !== 0) {
    fail(`plan.ep × plan.etp must divide the GPUs of a pipeline stage (${perStage}) (got ${ep} × ${etp})`);
  }
  const dp = perStage / (tp * cp);
  const edp = perStage / (etp * ep);
  const globalBatch = p.global_batch || config.data.batch_size;
  const ranks = cp > 1 ? `tp ${tp} · cp ${cp} · pp ${pp}` : `tp ${tp} · pp ${pp}`;
  if (globalBatch % dp !== 0) {
    fail(`plan.global_batch (or data.batch_size) must be divisible by the data-parallel ranks (${dp} = ${N} GPUs / (${ranks})) `
      + `(got ${globalBatch})`);
  }
  const microBatch = p.micro_batch || globalBatch / dp;
  if ((globalBatch / dp) % microBatch !== 0) {
    fail(`plan.micro_batch must divide the sequences of a data-parallel rank (${globalBatch / dp}) (got ${microBatch})`);
  }
  if (p.precision === 'fp8' && cluster.gpu.tflops_fp8 === undefined) {
    fail(`plan.precision fp8 needs the cluster's gpu.tflops_fp8 (${cluster.name} has none) (got "fp8")`);
  }
  if (!Array.from({ length: m.n_layers }, (_, l) => l).some((l) => isSwitchBlock(config, l))) {
    fail('model.switch_every must leave at least one Switch layer after model.first_dense_layers (got none)');
  }
  const { stages, mtpBlocks } = rankBlocks(config, split);
  const seq = seqLen / cp;
  return {
    gpus: N, tp, cp, pp, vpp, dp, ep, etp, edp, globalBatch, microBatch, microBatches: globalBatch / dp / microBatch,
    seq, seqLen, tokensPerGpu: (microBatch * seq) / tp, stages, split, mtpBlocks,
    experts: E, expertsPerGpu: E / ep, dffExpert,
    heads, kvHeads, headDim: mla ? m.qk_nope_head_dim + m.qk_rope_head_dim : m.head_dim || m.d_model / heads,
    vocab: m.vocab_size || vocabSize,
    groups: {
      tp: commGroup(cluster, tp, 1),
      cp: commGroup(cluster, cp, tp),
      dp: commGroup(cluster, dp * cp, tp),
      ep: commGroup(cluster, ep, etp),
      etp: commGroup(cluster, etp, 1),
      edp: commGroup(cluster, edp, etp * ep),
    },
    ppCrossesNodes: pp > 1 && perStage >= cluster.gpus_per_node,
  };
}
