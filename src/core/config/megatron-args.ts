import { ConfigError, show } from './errors.js';
import { readFlags, type FlagValue } from './megatron-flags.js';
import { shapeOf, type ShapeBase } from './megatron-shape.js';
import { RECOMPUTE_MODULES } from './schema-parallel.js';

/**
 * A Megatron-LM command line as a config overlay. The command line describes a whole plan: every plan.*
 * key is set, an absent flag taking Megatron-LM's default (tp, pp, cp and ep 1, etp = tp, no interleaving,
 * no recompute, the allgather dispatcher, dropless); --seq-length, the batch sizes and the model's shape
 * set their keys only when given. Defaults and rules: NVIDIA/Megatron-LM megatron/training/arguments.py
 * (`validate_args`), megatron/core/transformer/transformer_config.py and model_parallel_config.py.
 */
type Tree = Record<string, unknown>;

export interface MegatronOverlay {
  /** data, model, moe and plan keys, layered after the config file */
  tree: { data: Tree; model: Tree; moe: Tree; plan: Tree };
  /** flags accepted that change nothing switch-sim models */
  ignored: string[];
}

/** The config's keys the flags are read against (the model after --config; the flags may change it). */
export type MegatronBase = ShapeBase;

/** Megatron-Core's selective modules that switch-sim does not model (Gated DeltaNet, hyper-connections). */
const UNMODELLED_MODULES = ['gdn_norm_out', 'gdp_in_proj', 'gdp_qkv', 'mhc'];

/** The flag that sets a config key, for errors the schema finds in a key the flags set. */
const KEY_FLAGS: Record<string, string> = {
  'data.seq_len': '--seq-length', 'plan.global_batch': '--global-batch-size', 'plan.micro_batch': '--micro-batch-size',
  'plan.tp': '--tensor-model-parallel-size', 'plan.pp': '--pipeline-model-parallel-size',
  'plan.vpp': '--num-virtual-stages-per-pipeline-rank', 'plan.cp': '--context-parallel-size',
  'plan.decoder_first_pipeline_num_layers': '--decoder-first-pipeline-num-layers',
  'plan.decoder_last_pipeline_num_layers': '--decoder-last-pipeline-num-layers',
  'plan.ep': '--expert-model-parallel-size', 'plan.etp': '--expert-tensor-parallel-size',
  'plan.recompute_modules': '--recompute-modules', 'plan.dispatch': '--moe-pad-expert-input-to-capacity',
  'plan.dispatcher': '--moe-token-dispatcher-type', 'plan.dispatch_fwd_dtype': '--moe-dispatch-fwd-dtype',
  'plan.overlap': '--overlap-moe-expert-parallel-comm', 'moe.capacity_factor': '--moe-expert-capacity-factor',
  'model.n_layers': '--num-layers', 'model.d_model': '--hidden-size', 'model.d_ff': '--ffn-hidden-size',
  'model.n_heads': '--num-attention-heads', 'model.head_dim': '--kv-channels', 'model.n_kv_heads': '--num-query-groups',
  'model.mtp_layers': '--mtp-num-layers', 'model.vocab_size': '--vocab-size', 'moe.n_experts': '--num-experts',
  'moe.top_k': '--moe-router-topk', 'moe.d_ff_expert': '--moe-ffn-hidden-size',
};
export const megatronFlagOf = (key: string): string | undefined => KEY_FLAGS[key];

const refuse = (flag: string, rule: string, got: unknown): never => {
  throw new ConfigError(`${flag} ${rule} (got ${show(got)})`);
};

/** Maps a Megatron-LM command line over `base`; a flag it cannot represent is refused in one line. */
export function megatronOverlay(line: string, base: MegatronBase): MegatronOverlay {
  const { values, ignored } = readFlags(line);
  const has = (f: string) => values.has(f);
  const num = (f: string) => values.get(f) as number | undefined;
  const txt = (f: string) => values.get(f) as string | undefined;
  const ignore = (f: string) => {
    if (has(f)) ignored.push(f);
  };
  const positive = (f: string) => {
    const v = num(f);
    if (v !== undefined && v < 1) refuse(f, 'must be an integer >= 1', v);
    return v;
  };
  for (const f of ['--seq-length', '--global-batch-size', '--micro-batch-size', '--tensor-model-parallel-size',
    '--pipeline-model-parallel-size', '--context-parallel-size', '--expert-model-parallel-size',
    '--expert-tensor-parallel-size', '--num-layers-per-virtual-pipeline-stage',
    '--num-virtual-stages-per-pipeline-rank', '--decoder-first-pipeline-num-layers',
    '--decoder-last-pipeline-num-layers']) positive(f);
  const data: Tree = {};
  const plan: Tree = {};
  const tp = num('--tensor-model-parallel-size') ?? 1;
  const { model, moe } = shapeOf(values, base, ignored, tp);
  const layers = (model.n_layers as number | undefined) ?? base.n_layers;
  if (has('--seq-length')) data.seq_len = num('--seq-length');
  if (has('--global-batch-size')) plan.global_batch = num('--global-batch-size');
  if (has('--micro-batch-size')) plan.micro_batch = num('--micro-batch-size');
  if (has('--fp16'))
    refuse('--fp16', 'is not modelled: switch-sim computes in bf16 (--bf16) or fp8 (--fp8-format)', true);
  if (!has('--bf16') && !has('--fp8-format')) {
    refuse('--megatron-args', 'must give --bf16 (or --fp8-format): Megatron-LM trains in fp32 '
      + 'without, which switch-sim '
      + 'does not model', line);
  }
  plan.precision = has('--fp8-format') ? 'fp8' : 'bf16';
  // Megatron-LM turns sequence parallelism off at tp 1; switch-sim models tensor parallelism with it
  if (tp > 1 && !has('--sequence-parallel')) {
    refuse('--sequence-parallel',
      'is needed with --tensor-model-parallel-size > 1: switch-sim splits the sequence over tp',
      false);
  }
  if (tp === 1) ignore('--sequence-parallel');
  const pp = num('--pipeline-model-parallel-size') ?? 1;
  const first = num('--decoder-first-pipeline-num-layers') ?? 0;
  const last = num('--decoder-last-pipeline-num-layers') ?? 0;
  const embedding = has('--account-for-embedding-in-pipeline-split');
  const loss = has('--account-for-loss-in-pipeline-split');
  if (has('--pipeline-model-parallel-layout')) {
    refuse('--pipeline-model-parallel-layout', 'is not modelled: give --decoder-first/last-pipeline-num-layers or the '
      + 'account-for flags', txt('--pipeline-model-parallel-layout'));
  }
  Object.assign(plan, {
    tp, pp, vpp: virtualStages(values, layers, pp, first + last > 0, embedding, loss),
    decoder_first_pipeline_num_layers: first, decoder_last_pipeline_num_layers: last,
    account_for_embedding_in_pipeline_split: embedding, account_for_loss_in_pipeline_split: loss,
    cp: num('--context-parallel-size') ?? 1, ep: num('--expert-model-parallel-size') ?? 1,
    etp: num('--expert-tensor-parallel-size') ?? tp,
    shard: shardOf(values, pp, num('--expert-model-parallel-size') ?? 1, ignored),
    ...recomputeOf(values, ignored), ...dispatchOf(values, moe, ignored),
  });
  return { tree: { data, model, moe, plan }, ignored };
}

/** plan.vpp from --num-virtual-stages-per-pipeline-rank or --num-layers-per-virtual-pipeline-stage (validate_args). */
function virtualStages(values: Map<string, FlagValue>, layers: number, pp: number, uneven: boolean, e: boolean,
  l: boolean) {
  const perStage = values.get('--num-layers-per-virtual-pipeline-stage') as number | undefined;
  const stages = values.get('--num-virtual-stages-per-pipeline-rank') as number | undefined;
  if (perStage === undefined) return stages ?? 1;
  if (stages !== undefined) {
    refuse('--num-layers-per-virtual-pipeline-stage', 'must not be given with --num-virtual-stages-per-pipeline-rank',
      perStage);
  }
  if (uneven) {
    refuse('--num-layers-per-virtual-pipeline-stage',
      'must not be given with --decoder-first/last-pipeline-num-layers: '
      + 'give --num-virtual-stages-per-pipeline-rank', perStage);
  }
  const slots = layers + (e ? 1 : 0) + (l ? 1 : 0);
  if (slots % pp !== 0) {
    refuse('--num-layers-per-virtual-pipeline-stage', `needs the ${slots} block slots divisible by `
      + `--pipeline-model-parallel-size (${pp})`, perStage);
  }
  if ((slots / pp) % perStage !== 0) {
    refuse('--num-layers-per-virtual-pipeline-stage', `must divide the ${slots / pp} block slots of each rank`,
      perStage);
  }
  return slots / pp / perStage;
}

/** plan.shard from the distributed optimizer and the two FSDPs (validate_args' asserts for torch FSDP2). */
function shardOf(values: Map<string, FlagValue>, pp: number, ep: number, ignored: string[]): string {
  const distributed = values.has('--use-distributed-optimizer');
  const strategy = values.get('--data-parallel-sharding-strategy') as string | undefined;
  if (values.has('--use-torch-fsdp2')) {
    if (distributed) refuse('--use-torch-fsdp2', 'must not be given with --use-distributed-optimizer', true);
    if (values.has('--use-megatron-fsdp'))
      refuse('--use-torch-fsdp2', 'must not be given with --use-megatron-fsdp', true);
    if (pp > 1) refuse('--use-torch-fsdp2', 'needs --pipeline-model-parallel-size 1', true);
    if (ep > 1) refuse('--use-torch-fsdp2', 'needs --expert-model-parallel-size 1', true);
    if (strategy !== undefined) ignored.push('--data-parallel-sharding-strategy');
    return 'full';
  }
  if (values.has('--use-megatron-fsdp')) {
    // Megatron-FSDP's default strategy optim_grads_params shards parameters, gradients and optimizer state (ZeRO-3)
    const s = strategy ?? 'optim_grads_params';
    if (s === 'optim_grads') {
      refuse('--data-parallel-sharding-strategy', 'is not modelled (ZeRO-2): give optim or optim_grads_params', s);
    }
    return s === 'optim_grads_params' ? 'full' : s === 'optim' || distributed ? 'optimizer' : 'none';
  }
  if (strategy !== undefined) ignored.push('--data-parallel-sharding-strategy');
  return distributed ? 'optimizer' : 'none';
}

/** plan.recompute and plan.recompute_modules (TransformerConfig's recompute checks). */
function recomputeOf(values: Map<string, FlagValue>, ignored: string[]): Tree {
  const granularity = (values.get('--recompute-granularity') as string | undefined)
    ?? (values.has('--recompute-activations') ? 'selective' : undefined);
  const method = values.get('--recompute-method') as string | undefined;
  const count = values.get('--recompute-num-layers') as number | undefined;
  const modules = values.get('--recompute-modules') as string[] | undefined;
  if (values.has('--distribute-saved-activations')) refuse('--distribute-saved-activations', 'is not modelled', true);
  const unread = (f: string) => {
    if (values.has(f)) ignored.push(f);
  };
  if (granularity === undefined) {
    ['--recompute-method', '--recompute-num-layers', '--recompute-modules'].forEach(unread);
    return { recompute: 'none', recompute_modules: [] };
  }
  if (granularity === 'full') {
    if (method === undefined) {
      refuse('--recompute-method', 'must be uniform or block with --recompute-granularity full', undefined);
    }
    if (count === undefined)
      refuse('--recompute-num-layers', 'must be given with --recompute-granularity full', undefined);
    if (method === 'block') {
      refuse('--recompute-method', 'block (only the first N blocks of each stage) is not modelled: give uniform with '
        + '--recompute-num-layers 1', method);
    }
    if (count !== 1)
      refuse('--recompute-num-layers', 'must be 1 with --recompute-method uniform: switch-sim recomputes each '
        + 'block from its own input', count);
    unread('--recompute-modules');
    return { recompute: 'full', recompute_modules: [] };
  }
  if (method !== undefined)
    refuse('--recompute-method', 'must not be given with --recompute-granularity selective', method);
  if (count !== undefined)
    refuse('--recompute-num-layers', 'must not be given with --recompute-granularity selective', count);
  for (const m of modules ?? []) {
    if (UNMODELLED_MODULES.includes(m)) refuse('--recompute-modules', `${m} is not modelled`, modules);
    if (!(RECOMPUTE_MODULES as readonly string[]).includes(m)) {
      refuse('--recompute-modules', `must be among ${[...RECOMPUTE_MODULES, ...UNMODELLED_MODULES].join('|')}`,
        modules);
    }
  }
  return { recompute: 'selective', recompute_modules: modules ?? [] };
}

/** plan.dispatcher, dispatch_fwd_dtype, dispatch, overlap and routing, and moe's capacity (MoE flags of §6). */
function dispatchOf(values: Map<string, FlagValue>, moe: Tree, ignored: string[]): Tree {
  const dispatcher = (values.get('--moe-token-dispatcher-type') as string | undefined) ?? 'allgather';
  const backend = (values.get('--moe-flex-dispatcher-backend') as string | undefined) ?? 'deepep';
  if (dispatcher !== 'flex' && values.has('--moe-flex-dispatcher-backend'))
    ignored.push('--moe-flex-dispatcher-backend');
  // --moe-enable-deepep (deprecated) is the flex dispatcher's deepep backend
  if (values.has('--moe-enable-deepep') && (dispatcher !== 'flex' || backend === 'hybridep')) {
    refuse('--moe-enable-deepep',
      'needs --moe-token-dispatcher-type flex and not --moe-flex-dispatcher-backend hybridep', true);
  }
  const fwd = (values.get('--moe-dispatch-fwd-dtype') as string | undefined) ?? 'bf16';
  if (fwd === 'mxfp8' && (dispatcher !== 'flex' || backend !== 'ncclep')) {
    refuse('--moe-dispatch-fwd-dtype',
      'mxfp8 needs --moe-token-dispatcher-type flex with --moe-flex-dispatcher-backend '
      + 'ncclep (the only Megatron-Core backend with a wire dtype)', fwd);
  }
  if (values.get('--moe-combine-bwd-dtype') === 'mxfp8')
    refuse('--moe-combine-bwd-dtype', 'mxfp8 is not modelled', 'mxfp8');
  const factor = values.get('--moe-expert-capacity-factor') as number | undefined;
  // Megatron-Core: no capacity factor (or a negative one) is dropless
  const capacity = factor !== undefined && factor >= 0;
  moe.drop_tokens = capacity;
  if (capacity) moe.capacity_factor = factor;
  const padded = values.has('--moe-pad-expert-input-to-capacity');
  if (padded && !capacity) refuse('--moe-pad-expert-input-to-capacity', 'needs --moe-expert-capacity-factor', true);
  return {
    dispatcher, dispatch_fwd_dtype: fwd, dispatch: padded ? 'padded' : 'dropless',
    overlap: values.has('--overlap-moe-expert-parallel-comm') ? 'a2a' : 'none',
    routing: values.has('--moe-router-force-load-balancing') ? 'uniform' : 'recorded',
  };
}
