import { pipelineSplit, pipelineSplitRefusal, planSplitInput } from '../../core/config/pipeline-split.js';
import type { Plan, SearchContext } from './context.js';

/**
 * Which plans Megatron-Core accepts (NVIDIA/Megatron-LM: megatron/training/arguments.py `validate_args` (ARGS),
 * megatron/core/transformer/transformer_config.py `__post_init__` (TC), megatron/core/parallel_state.py (PS),
 * megatron/core/num_microbatches_calculator.py (MB), megatron/core/pipeline_parallel/schedules.py (SCHED)), and
 * the few switch-sim cannot project. Each rule names the plan keys it reads: the search checks it as soon as the
 * last of them is chosen, and a broken rule refuses every plan below (counted, never built).
 */
export interface SearchRule {
  keys: (keyof Plan)[];
  /** the rule, one line, as the count of refusals shows it */
  doc: string;
  ok: (p: Plan, ctx: SearchContext) => boolean;
  /** a memory bound (counted apart from the refusals) */
  memory?: boolean;
}

/** data-parallel ranks of the dense layers: N / (tp · cp · pp) */
export const denseDp = (p: Plan, ctx: SearchContext) => ctx.gpus / (p.tp * p.cp * p.pp);
/** micro-batches a step: global batch / (micro-batch · dp) */
export const microBatches = (p: Plan, ctx: SearchContext) => ctx.globalBatch / (p.micro_batch * denseDp(p, ctx));

/** Whether Megatron-Core builds the split (the remainder split is switch-sim's alone), by split (checked per prefix). */
const splits = new Map<string, boolean>();
const splitOk = (p: Plan, ctx: SearchContext) => {
  const input = planSplitInput({ model: { n_layers: ctx.layers }, plan: p });
  const key = JSON.stringify(input);
  let ok = splits.get(key);
  if (ok === undefined) splits.set(key, (ok = pipelineSplitRefusal(input) === undefined && pipelineSplit(input).rule !== 'remainder'));
  return ok;
};

export const SEARCH_RULES: SearchRule[] = [
  { keys: ['pp', 'vpp', 'decoder_first_pipeline_num_layers', 'decoder_last_pipeline_num_layers',
    'account_for_embedding_in_pipeline_split', 'account_for_loss_in_pipeline_split'],
  doc: 'the pipeline split: layers (+ slots) divisible by pp, each rank\'s by vpp; vpp 1 without pp (TC, ARGS)', ok: splitOk },
  { keys: ['tp'], doc: 'tp divides the attention heads (TC)', ok: (p, ctx) => ctx.heads % p.tp === 0 },
  { keys: ['tp'], doc: 'tp divides the key/value heads (TC allows a divisor of tp too; switch-sim does not replicate heads)',
    ok: (p, ctx) => ctx.kvHeads % p.tp === 0 },
  { keys: ['tp'], doc: 'tp divides model.d_ff (the column-parallel FFN)', ok: (p, ctx) => ctx.dff % p.tp === 0 },
  { keys: ['pp', 'tp'], doc: 'tp · pp divides the GPUs (PS)', ok: (p, ctx) => ctx.gpus % (p.tp * p.pp) === 0 },
  { keys: ['cp'], doc: 'cp 1 or 2 · cp divides the sequence (ARGS: zigzag chunks)',
    ok: (p, ctx) => p.cp === 1 || ctx.seq % (2 * p.cp) === 0 },
  { keys: ['cp'], doc: 'cp 1 with multi-token prediction (TC)', ok: (p, ctx) => p.cp === 1 || ctx.mtpLayers === 0 },
  { keys: ['pp', 'tp', 'cp'], doc: 'tp · cp · pp divides the GPUs (PS)', ok: (p, ctx) => ctx.gpus % (p.tp * p.cp * p.pp) === 0 },
  { keys: ['tp', 'cp'], doc: 'tp divides each rank\'s sequence share, seq / cp (sequence parallelism)',
    ok: (p, ctx) => (ctx.seq / p.cp) % p.tp === 0 },
  { keys: ['ep'], doc: 'ep divides the experts (ARGS)', ok: (p, ctx) => ctx.experts % p.ep === 0 },
  { keys: ['pp', 'ep'], doc: 'ep · pp divides the GPUs (PS)', ok: (p, ctx) => ctx.gpus % (p.ep * p.pp) === 0 },
  { keys: ['etp'], doc: 'etp divides the experts\' hidden size (the column-parallel expert FFN)',
    ok: (p, ctx) => ctx.dffExpert % p.etp === 0 },
  { keys: ['pp', 'ep', 'etp'], doc: 'etp · ep · pp divides the GPUs (PS)', ok: (p, ctx) => ctx.gpus % (p.etp * p.ep * p.pp) === 0 },
  { keys: ['pp', 'tp', 'cp', 'micro_batch'], doc: 'micro-batch · dp divides the global batch (MB)',
    ok: (p, ctx) => Number.isInteger(microBatches(p, ctx)) },
  { keys: ['pp', 'vpp', 'tp', 'cp', 'micro_batch'], doc: 'with vpp, micro-batches a multiple of pp (SCHED: groups of pp)',
    ok: (p, ctx) => p.vpp === 1 || microBatches(p, ctx) % p.pp === 0 },
  { keys: ['ep', 'overlap'], doc: 'overlap a2a needs ep > 1 (TC)', ok: (p) => p.overlap === 'none' || p.ep > 1 },
  { keys: ['pp', 'vpp', 'overlap'], doc: 'overlap a2a with pp > 1 needs vpp (TC)',
    ok: (p) => p.overlap === 'none' || p.pp === 1 || p.vpp > 1 },
  { keys: ['recompute', 'recompute_modules', 'overlap'], doc: 'overlap a2a refuses full recompute and recomputing moe (TC)',
    ok: (p) => p.overlap === 'none' || (p.recompute !== 'full' && !p.recompute_modules.includes('moe')) },
  { keys: ['overlap', 'dispatcher'], doc: 'overlap a2a needs the alltoall or flex dispatcher (TC)',
    ok: (p) => p.overlap === 'none' || p.dispatcher !== 'allgather' },
  { keys: ['tp', 'ep', 'dispatcher'], doc: 'flex (DeepEP) needs tp · ep > 1', ok: (p) => p.dispatcher !== 'flex' || p.tp * p.ep > 1 },
  { keys: ['dispatcher', 'dispatch_fwd_dtype'], doc: 'an mxfp8 dispatch needs the flex dispatcher',
    ok: (p) => p.dispatch_fwd_dtype === 'bf16' || p.dispatcher === 'flex' },
  { keys: ['precision'], doc: 'fp8 needs the cluster\'s gpu.tflops_fp8',
    ok: (p, ctx) => p.precision !== 'fp8' || ctx.cluster.gpu.tflops_fp8 !== undefined },
  { keys: ['ep', 'redundant_experts'], doc: 'ep divides the experts plus their redundant copies (EPLB: equal slots a GPU)',
    ok: (p, ctx) => (ctx.experts + p.redundant_experts) % p.ep === 0 },
  { keys: ['redundant_experts'], doc: 'redundant experts need a run\'s recorded routing to be placed by',
    ok: (p, ctx) => p.redundant_experts === 0 || ctx.recorded },
  { keys: ['dispatcher', 'dispatch'], doc: 'flex is dropless (DeepEP refuses padding)', ok: (p) => p.dispatch === 'dropless' || p.dispatcher !== 'flex' },
];
