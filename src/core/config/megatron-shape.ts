import { ConfigError, show } from './errors.js';
import type { FlagValue } from './megatron-flags.js';
import { parseLayerFreq, switchPattern } from './moe-layers.js';

/**
 * The model's shape and router from Megatron-LM flags (megatron/training/arguments.py; the flag reference in
 * the research notes §6.3): each key is set only when its flag is given; the rest of model.* and moe.* stay
 * the config's.
 */
type Tree = Record<string, unknown>;

export interface ShapeBase {
  n_layers: number;
  d_ff: number;
  d_ff_expert: number;
}

const refuse = (flag: string, rule: string, got: unknown): never => {
  throw new ConfigError(`${flag} ${rule} (got ${show(got)})`);
};

/** Flag → key, copied as given. */
const COPIED: [string, 'model' | 'moe', string][] = [
  ['--num-layers', 'model', 'n_layers'], ['--hidden-size', 'model', 'd_model'], ['--ffn-hidden-size', 'model', 'd_ff'],
  ['--num-attention-heads', 'model', 'n_heads'], ['--kv-channels', 'model', 'head_dim'],
  ['--mtp-num-layers', 'model', 'mtp_layers'],
  ['--num-experts', 'moe', 'n_experts'], ['--moe-router-topk', 'moe', 'top_k'],
  ['--moe-ffn-hidden-size', 'moe', 'd_ff_expert'],
  ['--moe-router-score-function', 'moe', 'score'], ['--moe-router-topk-scaling-factor', 'moe', 'topk_scaling'],
  ['--moe-router-num-groups', 'moe', 'route_groups'], ['--moe-router-group-topk', 'moe', 'route_group_topk'],
  ['--moe-router-bias-update-rate', 'moe', 'bias_update_rate'], ['--moe-aux-loss-coeff', 'moe', 'balance_loss_coef'],
  ['--moe-z-loss-coeff', 'moe', 'z_loss_coef'],
];

/** model.* and moe.* keys the flags give; `tp` pads --vocab-size as Megatron-LM does. */
export function shapeOf(
  values: Map<string, FlagValue>, base: ShapeBase, ignored: string[], tp: number,
): { model: Tree; moe: Tree } {
  const out = { model: {} as Tree, moe: {} as Tree };
  const num = (f: string) => values.get(f) as number | undefined;
  for (const [flag, section, key] of COPIED) if (values.has(flag)) out[section][key] = values.get(flag);
  const { model, moe } = out;
  if (num('--num-experts') === 0)
    refuse('--num-experts', 'must be >= 1: switch-sim models mixture-of-experts layers', 0);
  if (values.has('--swiglu')) model.activation = 'swiglu';
  // grouped-query attention: --num-query-groups counts only with --group-query-attention (default 1 group)
  if (values.has('--group-query-attention')) model.n_kv_heads = num('--num-query-groups') ?? 1;
  else if (values.has('--num-query-groups')) ignored.push('--num-query-groups');
  const mla = ['--q-lora-rank', '--kv-lora-rank', '--qk-head-dim', '--qk-pos-emb-head-dim', '--v-head-dim'];
  if (values.has('--multi-latent-attention')) {
    // the flags' defaults in megatron/training/arguments.py `_add_mla_args` (q_lora_rank None: no query compression)
    Object.assign(model, {
      q_lora_rank: num('--q-lora-rank') ?? 0, kv_lora_rank: num('--kv-lora-rank') ?? 32,
      qk_nope_head_dim: num('--qk-head-dim') ?? 128, qk_rope_head_dim: num('--qk-pos-emb-head-dim') ?? 64,
      v_head_dim: num('--v-head-dim') ?? 128, head_dim: 0,
    });
    if (!values.has('--group-query-attention')) model.n_kv_heads = 0;
  } else ignored.push(...mla.filter((f) => values.has(f)));
  if (values.has('--padded-vocab-size')) model.vocab_size = num('--padded-vocab-size');
  else if (values.has('--vocab-size')) {
    // vocab_size_with_padding: up to a multiple of make_vocab_size_divisible_by (128) × tp
    const multiple = (num('--make-vocab-size-divisible-by') ?? 128) * tp;
    model.vocab_size = Math.ceil(num('--vocab-size')! / multiple) * multiple;
  }
  const layers = (model.n_layers as number | undefined) ?? base.n_layers;
  const freq = values.get('--moe-layer-freq') as string | undefined;
  if (freq !== undefined) {
    const flags = parseLayerFreq(freq, layers);
    if (typeof flags === 'string') refuse('--moe-layer-freq', flags, freq);
    const pattern = switchPattern(flags as boolean[]);
    if (!pattern) {
      refuse('--moe-layer-freq', 'must give dense blocks first, then an MoE block every k (switch-sim\'s pattern)',
        freq);
    }
    Object.assign(model, pattern);
  }
  const shared = num('--moe-shared-expert-intermediate-size');
  if (shared !== undefined) {
    // Megatron's shared width is n_shared · one expert's width; switch-sim counts shared experts of d_ff_expert
    const width = (moe.d_ff_expert as number | undefined) || base.d_ff_expert
      || ((model.d_ff as number | undefined) ?? base.d_ff);
    if (shared % width !== 0) {
      refuse('--moe-shared-expert-intermediate-size', `must be a multiple of the experts' width (${width})`, shared);
    }
    moe.shared_experts = shared / width;
  }
  routerOf(values, moe);
  return out;
}

/** moe.balance and moe.norm_topk from the router's flags. */
function routerOf(values: Map<string, FlagValue>, moe: Tree): void {
  const balance = values.get('--moe-router-load-balancing-type') as string | undefined;
  if (balance === 'global_aux_loss' || balance === 'sinkhorn') {
    refuse('--moe-router-load-balancing-type', 'must be aux_loss, seq_aux_loss or none (switch-sim\'s moe.balance)',
      balance);
  }
  if (balance !== undefined) moe.balance = balance;
  // the expert bias (aux-loss-free balancing) replaces the loss in switch-sim's one moe.balance
  if (values.has('--moe-router-enable-expert-bias')) moe.balance = 'aux_free';
  // pre-softmax: the top-k scores themselves, not renormalised over the k (switch-sim's norm_topk false)
  if (values.has('--moe-router-pre-softmax')) moe.norm_topk = false;
}
