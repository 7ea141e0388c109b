import type { z } from 'zod';
import { pipelineSplitRefusal, planSplitInput } from './pipeline-split.js';
import type { data, model } from './schema-model.js';
import type { moe } from './schema-moe.js';
import type { plan } from './schema-parallel.js';

/**
 * The rules between keys of Megatron-Core's plans and DeepSeek's attention (multi-head latent attention,
 * multi-token prediction): the key an error names, the rule as the reference states it, and the check.
 * Each rule cites the Megatron-Core check it follows (NVIDIA/Megatron-LM: megatron/training/arguments.py
 * `validate_args`, megatron/core/transformer/transformer_config.py `TransformerConfig.__post_init__`).
 */
interface Shape {
  data: z.output<typeof data>;
  model: z.output<typeof model>;
  moe: z.output<typeof moe>;
  plan: z.output<typeof plan>;
}

export interface PlanRule {
  key: string;
  doc: string;
  broken: (c: Shape) => string | undefined;
}

const unless = (ok: boolean, message: string) => (ok ? undefined : message);
const mla = (c: Shape) => c.model.kv_lora_rank > 0;
type ModelKey = 'q_lora_rank' | 'qk_nope_head_dim' | 'qk_rope_head_dim' | 'v_head_dim';

/** An MLA key must be 0 with standard attention (model.kv_lora_rank 0). */
const zeroWithoutMla = (k: ModelKey): PlanRule => ({
  key: `model.${k}`, doc: 'must be 0 without multi-head latent attention (model.kv_lora_rank 0)',
  broken: (c) => unless(mla(c) || c.model[k] === 0,
    'must be 0 without multi-head latent attention (model.kv_lora_rank 0)'),
});
/** A head size of MLA must be set when model.kv_lora_rank is. */
const setWithMla = (k: ModelKey): PlanRule => ({
  key: `model.${k}`, doc: 'must be > 0 with multi-head latent attention (model.kv_lora_rank > 0)',
  broken: (c) => unless(!mla(c) || c.model[k] > 0,
    'must be > 0 with multi-head latent attention (model.kv_lora_rank > 0)'),
});

/** A rule of the pipeline split (pipeline-split.ts), reported under the key the split names. */
const split = (key: string, doc: string): PlanRule => ({
  key, doc, broken: (c) => {
    const refusal = pipelineSplitRefusal(planSplitInput(c));
    return refusal?.key === key ? refusal.rule : undefined;
  },
});

/** In the order they are checked, after the rules of schema.ts. */
export const PLAN_RULES: PlanRule[] = [
  zeroWithoutMla('q_lora_rank'), zeroWithoutMla('qk_nope_head_dim'), zeroWithoutMla('qk_rope_head_dim'),
  zeroWithoutMla('v_head_dim'), setWithMla('qk_nope_head_dim'), setWithMla('qk_rope_head_dim'),
  setWithMla('v_head_dim'),
  { key: 'model.n_kv_heads', doc: 'must be 0 or model.n_heads with multi-head latent attention',
    broken: ({ model: m }) =>
      unless(m.kv_lora_rank === 0 || m.n_kv_heads === 0 || m.n_kv_heads === m.n_heads, `must be 0 or model.n_heads `
        + `(${m.n_heads}) with multi-head latent attention (Megatron-Core refuses grouped-query attention with MLA)`) },
  { key: 'model.head_dim', doc: 'must be 0 with multi-head latent attention', broken: ({ model: m }) =>
    unless(m.kv_lora_rank === 0 || m.head_dim === 0,
      'must be 0 with multi-head latent attention: model.qk_nope_head_dim, qk_rope_head_dim and '
        + 'v_head_dim size the heads') },
  { key: 'model.mtp_layers', doc: 'must be 0 with plan.cp > 1', broken: (c) =>
    unless(c.model.mtp_layers === 0 || c.plan.cp === 1,
      `must be 0 with plan.cp ${c.plan.cp}: Megatron-Core's multi-token prediction does not `
        + `support context parallelism`) },
  { key: 'model.mtp_layers', doc: 'must be 0 or 1 with plan.overlap a2a', broken: (c) =>
    unless(c.model.mtp_layers <= 1 || c.plan.overlap !== 'a2a',
      "must be 0 or 1 with plan.overlap a2a (Megatron-Core's expert-parallel overlap takes at most one MTP layer)") },
  { key: 'plan.cp', doc: 'must be 1 or have 2 · plan.cp divide data.seq_len', broken: (c) =>
    unless(c.plan.cp === 1 || c.data.seq_len % (2 * c.plan.cp) === 0,
      `must be 1 or have 2 · plan.cp divide data.seq_len `
      + `(${c.data.seq_len}): Megatron-Core cuts each sequence into 2 · cp chunks, two per rank`) },
  split('plan.vpp', 'must be 1 with plan.pp 1; must divide the blocks (or block slots) of each rank'),
  split('plan.pp', 'must leave every virtual stage a block; with the embedding/loss accounting, '
    + 'must divide model.n_layers '
    + 'plus the accounted slots'),
  split('plan.decoder_first_pipeline_num_layers', 'must be 0 with plan.pp 1 or with the embedding/loss accounting; '
    + 'must be divisible by plan.vpp; must leave the ranks between first and last equal shares '
    + '(a multiple of plan.vpp)'),
  split('plan.decoder_last_pipeline_num_layers', 'the rules of plan.decoder_first_pipeline_num_layers'),
  { key: 'plan.recompute_modules', doc: 'must be empty unless plan.recompute is selective', broken: ({ plan: p }) =>
    unless(p.recompute === 'selective' || p.recompute_modules.length === 0,
      `must be empty unless plan.recompute is selective (it is ${p.recompute}): Megatron-Core reads them only then`) },
  { key: 'plan.recompute_modules', doc: 'must name each module once', broken: ({ plan: p }) =>
    unless(new Set(p.recompute_modules).size === p.recompute_modules.length, 'must name each module once') },
  { key: 'plan.recompute_modules', doc: 'must not name mla_up_proj without multi-head latent attention', broken: (c) =>
    unless(mla(c) || !c.plan.recompute_modules.includes('mla_up_proj'),
      'must not name mla_up_proj without multi-head latent attention (model.kv_lora_rank 0)') },
  { key: 'plan.recompute_modules', doc: 'must not name moe with plan.overlap a2a', broken: ({ plan: p }) =>
    unless(p.overlap !== 'a2a' || !p.recompute_modules.includes('moe'),
      "must not name moe with plan.overlap a2a (Megatron-Core's expert-parallel overlap refuses it)") },
  { key: 'plan.overlap', doc: 'must be none with plan.dispatcher allgather', broken: ({ plan: p }) =>
    unless(p.overlap === 'none' || p.dispatcher !== 'allgather',
      'must be none with plan.dispatcher allgather: Megatron-Core overlaps the alltoall and flex dispatchers only') },
  { key: 'plan.dispatch', doc: 'must be dropless with plan.dispatcher flex', broken: ({ plan: p }) =>
    unless(p.dispatch === 'dropless' || p.dispatcher !== 'flex',
      "must be dropless with plan.dispatcher flex (Megatron-Core's DeepEP backend refuses padding to capacity)") },
  { key: 'plan.dispatch_fwd_dtype', doc: 'must be bf16 unless plan.dispatcher is flex', broken: ({ plan: p }) =>
    unless(p.dispatch_fwd_dtype === 'bf16' || p.dispatcher === 'flex',
      'must be bf16 unless plan.dispatcher is flex: Megatron-Core sets a wire dtype in its flex dispatcher only') },
];
