import { ConfigError, nearest, show } from './errors.js';

/**
 * Megatron-LM command-line flags as switch-sim reads them: the flags it maps (names, types and choices as
 * megatron/training/arguments.py and the TransformerConfig / ModelParallelConfig fields define them, NVIDIA/
 * Megatron-LM), the flags it accepts and ignores because they change nothing it models, and the syntax
 * (`--flag value`, `--flag=value`, lists of values, quotes, backslash line continuations).
 */
type Kind = 'bool' | 'int' | 'float' | 'text' | 'list';
interface Flag {
  kind: Kind;
  choices?: readonly string[];
}

const bool: Flag = { kind: 'bool' };
const int: Flag = { kind: 'int' };
const float: Flag = { kind: 'float' };
const text: Flag = { kind: 'text' };
const oneOf = (...choices: string[]): Flag => ({ kind: 'text', choices });

/** The flags switch-sim maps to config keys (megatron-args.ts says how). */
export const FLAGS: Record<string, Flag> = {
  '--seq-length': int, '--global-batch-size': int, '--micro-batch-size': int,
  '--bf16': bool, '--fp16': bool, '--fp8-format': oneOf('e4m3', 'hybrid'),
  '--tensor-model-parallel-size': int, '--sequence-parallel': bool, '--pipeline-model-parallel-size': int,
  '--num-layers-per-virtual-pipeline-stage': int, '--num-virtual-stages-per-pipeline-rank': int,
  '--pipeline-model-parallel-layout': text,
  '--decoder-first-pipeline-num-layers': int, '--decoder-last-pipeline-num-layers': int,
  '--account-for-embedding-in-pipeline-split': bool, '--account-for-loss-in-pipeline-split': bool,
  '--context-parallel-size': int, '--expert-model-parallel-size': int, '--expert-tensor-parallel-size': int,
  '--use-distributed-optimizer': bool, '--use-torch-fsdp2': bool, '--use-megatron-fsdp': bool,
  '--data-parallel-sharding-strategy': oneOf('no_shard', 'optim', 'optim_grads', 'optim_grads_params'),
  '--recompute-granularity': oneOf('full', 'selective'), '--recompute-method': oneOf('uniform', 'block'),
  '--recompute-num-layers': int, '--recompute-modules': { kind: 'list' }, '--recompute-activations': bool,
  '--distribute-saved-activations': bool,
  '--moe-token-dispatcher-type': oneOf('allgather', 'alltoall', 'flex'),
  '--moe-flex-dispatcher-backend': oneOf('deepep', 'hybridep', 'ncclep'), '--moe-enable-deepep': bool,
  '--moe-dispatch-fwd-dtype': oneOf('bf16', 'mxfp8'), '--moe-combine-bwd-dtype': oneOf('bf16', 'mxfp8'),
  '--overlap-moe-expert-parallel-comm': bool, '--moe-router-force-load-balancing': bool,
  '--moe-expert-capacity-factor': float, '--moe-pad-expert-input-to-capacity': bool,
  // the model's shape
  '--num-layers': int, '--hidden-size': int, '--ffn-hidden-size': int, '--num-attention-heads': int,
  '--kv-channels': int, '--group-query-attention': bool, '--num-query-groups': int, '--swiglu': bool,
  '--num-experts': int, '--moe-router-topk': int, '--moe-ffn-hidden-size': int,
  '--moe-shared-expert-intermediate-size': int, '--moe-layer-freq': text, '--multi-latent-attention': bool,
  '--q-lora-rank': int, '--kv-lora-rank': int, '--qk-head-dim': int, '--qk-pos-emb-head-dim': int, '--v-head-dim': int,
  '--mtp-num-layers': int, '--vocab-size': int, '--padded-vocab-size': int, '--make-vocab-size-divisible-by': int,
  // the router
  '--moe-router-score-function': oneOf('softmax', 'sigmoid'), '--moe-router-topk-scaling-factor': float,
  '--moe-router-num-groups': int, '--moe-router-group-topk': int, '--moe-router-enable-expert-bias': bool,
  '--moe-router-bias-update-rate': float, '--moe-aux-loss-coeff': float, '--moe-z-loss-coeff': float,
  '--moe-router-load-balancing-type': oneOf('aux_loss', 'seq_aux_loss', 'global_aux_loss', 'sinkhorn', 'none'),
  '--moe-router-pre-softmax': bool,
};

/**
 * Flags accepted and listed as ignored: data and checkpoints, logging, the optimizer's hyperparameters and
 * schedule (training's train.* keys; simulate does not train), numerics that do not change a shape
 * (rotary embeddings, norms, dropout, biases), and kernel choices switch-sim does not model separately
 * (fusions, CUDA graphs, grouped GEMM, communication overlaps it always assumes).
 */
export const IGNORED = new Set([
  '--data-path', '--mock-data', '--split', '--data-cache-path', '--num-workers', '--tokenizer-type',
  '--tokenizer-model', '--save', '--load', '--save-interval', '--no-load-optim', '--no-load-rng', '--no-save-optim',
  '--no-save-rng', '--ckpt-format', '--dist-ckpt-strategy', '--auto-detect-ckpt-format', '--exit-duration-in-mins',
  '--exit-interval', '--log-interval', '--log-throughput', '--log-timers-to-tensorboard', '--log-memory-to-tensorboard',
  '--log-num-zeros-in-grad', '--log-params-norm', '--log-validation-ppl-to-tensorboard', '--timing-log-level',
  '--tensorboard-dir', '--wandb-project', '--wandb-exp-name', '--wandb-save-dir', '--eval-interval', '--eval-iters',
  '--profile', '--profile-step-start', '--profile-step-end', '--use-pytorch-profiler', '--moe-per-layer-logging',
  '--lr', '--min-lr', '--lr-decay-style', '--lr-warmup-iters', '--lr-warmup-fraction', '--lr-warmup-samples',
  '--lr-decay-iters', '--lr-decay-samples', '--train-iters', '--train-samples', '--weight-decay', '--clip-grad',
  '--adam-beta1', '--adam-beta2', '--adam-eps', '--optimizer', '--init-method-std', '--seed',
  '--mtp-loss-scaling-factor', '--position-embedding-type', '--use-rotary-position-embeddings',
  '--no-position-embedding', '--rotary-base', '--rotary-percent', '--rotary-scaling-factor', '--mscale',
  '--mscale-all-dim', '--normalization', '--norm-epsilon', '--qk-layernorm', '--disable-bias-linear',
  '--untie-embeddings-and-output-weights', '--max-position-embeddings',
  '--attention-dropout', '--hidden-dropout', '--attention-softmax-in-fp32',
  '--use-mcore-models', '--transformer-impl', '--attention-backend', '--use-flash-attn', '--moe-grouped-gemm',
  '--moe-permute-fusion', '--moe-router-fusion', '--moe-router-dtype', '--cross-entropy-loss-fusion',
  '--cross-entropy-fusion-impl', '--no-masked-softmax-fusion', '--no-bias-swiglu-fusion', '--no-bias-dropout-fusion',
  '--no-rope-fusion', '--apply-rope-fusion', '--manual-gc', '--manual-gc-interval', '--cuda-graph-impl',
  '--cuda-graph-scope', '--enable-cuda-graph', '--overlap-grad-reduce', '--overlap-param-gather',
  '--delay-wgrad-compute', '--fp8-recipe', '--fp8-param-gather', '--grad-reduce-in-bf16',
  '--accumulate-allreduce-grads-in-fp32', '--moe-router-padding-for-fp8', '--moe-router-padding-for-quantization',
  '--moe-token-drop-policy', '--moe-shared-expert-overlap', '--moe-flex-dispatcher-num-sms', '--tp-comm-overlap',
  '--distributed-backend', '--distributed-timeout-minutes', '--ddp-bucket-size', '--ddp-average-in-collective',
  '--eod-mask-loss', '--calculate-per-token-loss', '--no-check-for-nan-in-loss-and-grad', '--dataloader-type',
  '--use-dist-ckpt', '--async-save', '--rope-type', '--beta-fast', '--beta-slow', '--original-max-position-embeddings',
  '--apply-layernorm-1p', '--te-rng-tracker', '--moe-input-jitter-eps',
]);

export type FlagValue = boolean | number | string | string[];

/**
 * The flags of a command line: the values of mapped flags (the last of a repeated one, as argparse), and the
 * ignored.
 */
export interface ReadFlags {
  values: Map<string, FlagValue>;
  ignored: string[];
}

/** Splits a command line into words: quotes group, a backslash escapes, line continuations vanish. */
export function words(line: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = '';
      else word += ch;
    } else if (ch === '\\') {
      if (line[i + 1] !== '\n') word = (word ?? '') + (line[i + 1] ?? '');
      i++;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else word = (word ?? '') + ch;
  }
  if (quote) throw new ConfigError(`--megatron-args has an unclosed ${quote} quote (got ${show(line)})`);
  if (word !== undefined) out.push(word);
  return out;
}

const refuse = (flag: string, rule: string, got: unknown): never => {
  throw new ConfigError(`${flag} ${rule} (got ${show(got)})`);
};

/** A flag's value from its words, checked against its kind and choices. */
function value(flag: string, spec: Flag, args: string[]): FlagValue {
  if (spec.kind === 'bool') return args.length === 0 ? true : refuse(flag, 'takes no value', args.join(' '));
  if (args.length === 0) return refuse(flag, 'needs a value', undefined);
  if (spec.kind === 'list') return args;
  if (args.length > 1) return refuse(flag, 'takes one value', args.join(' '));
  const v = args[0]!;
  if (spec.kind === 'int') return /^-?\d+$/.test(v) ? Number(v) : refuse(flag, 'must be an integer', v);
  if (spec.kind === 'float')
    return Number.isFinite(Number(v)) && v !== '' ? Number(v) : refuse(flag, 'must be a number', v);
  if (spec.choices && !spec.choices.includes(v)) refuse(flag, `must be one of ${spec.choices.join('|')}`, v);
  return v;
}

/** Reads a Megatron-LM command line; a flag neither mapped nor ignored is refused by name. */
export function readFlags(line: string): ReadFlags {
  const values = new Map<string, FlagValue>();
  const ignored: string[] = [];
  const ws = words(line);
  for (let i = 0; i < ws.length;) {
    const word = ws[i]!;
    if (!word.startsWith('--')) refuse('--megatron-args', 'must be flags, each starting with --', word);
    const eq = word.indexOf('=');
    const flag = eq > 0 ? word.slice(0, eq) : word;
    const args = eq > 0 ? [word.slice(eq + 1)] : [];
    for (i++; i < ws.length && !ws[i]!.startsWith('--'); i++) args.push(ws[i]!);
    const spec = FLAGS[flag];
    if (spec) values.set(flag, value(flag, spec, args));
    else if (IGNORED.has(flag)) ignored.push(flag);
    else {
      const hint = nearest(flag, [...Object.keys(FLAGS), ...IGNORED]);
      throw new ConfigError(`unknown Megatron-LM flag ${flag}${hint ? ` (did you mean ${hint}?)` : ''}: switch-sim `
        + 'neither maps it nor knows it changes nothing it models');
    }
  }
  return { values, ignored };
}
