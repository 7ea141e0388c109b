import test from 'ava';
import { readFileSync } from 'node:fs';
import { DEFAULTS } from '../src/core/config/defaults.js';
import { allKeys, resolveConfig } from '../src/core/config/load.js';
import { configReference, configSections, REFERENCE_FILE } from '../src/core/config/reference.js';
import { ConfigSchema, RULES } from '../src/core/config/schema.js';

const err = (sets: string[]) => {
  try {
    resolveConfig({ sets });
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};

test(`${REFERENCE_FILE} is what the schema generates (npm run docs:config rewrites it)`, (t) => {
  const page = readFileSync(new URL(`../${REFERENCE_FILE}`, import.meta.url), 'utf8');
  t.is(page, configReference(), `${REFERENCE_FILE} is not current: run npm run docs:config and commit it`);
});

test('the reference documents every key and section, with a type, a default and a description', (t) => {
  const sections = configSections();
  const documented = sections.flatMap((s) => s.keys);
  t.deepEqual(documented.map((k) => k.key), allKeys(), 'every key of the defaults, in their order, once');
  for (const s of sections.filter((s) => s.name)) t.true(s.description.length > 20, `section ${s.name} is described`);
  for (const k of documented) {
    t.true(k.description.length > 10, `${k.key} has a description`);
    t.notRegex(k.type, /^any$/, `${k.key} has a type`);
  }
  const page = configReference();
  t.regex(page, /\| `moe\.drop_policy` \| one of `position`, `random`, `priority` \| `position` \| /);
  t.regex(page, /\| `model\.d_model` \| integer in \[1, 8192\] \| 64 \| .*Rules: must be divisible by `model\.n_heads`\. \|/);
  t.regex(page, /\| `train\.beta2` \| number in \[0, 1\) \| 0\.99 \| /);
  t.regex(page, /\| `data\.path` \| string \| `""` \| /);
  t.regex(page, /\| `parallel\.timeout_ms` \| integer >= 1 \| 60000 \| /);
});

test('the defaults are the schema parsed from {}, with the values and key order they had before the schema', (t) => {
  t.deepEqual(ConfigSchema.parse({}), DEFAULTS);
  t.is(JSON.stringify(DEFAULTS), JSON.stringify({
    seed: 1337,
    data: { dataset: 'moby-dick', path: '', seq_len: 64, batch_size: 16, val_fraction: 0.1 },
    model: {
      d_model: 64, n_heads: 4, n_layers: 2, d_ff: 128, dropout: 0, activation: 'relu', switch_every: 1,
      first_dense_layers: 0, vocab_size: 0, head_dim: 0, n_kv_heads: 0, q_lora_rank: 0, kv_lora_rank: 0,
      qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0, mtp_layers: 0,
    },
    moe: {
      n_experts: 4, top_k: 1, d_ff_expert: 0, shared_experts: 0, capacity_factor: 1.25, eval_capacity_factor: 2.0,
      min_capacity: 4, drop_tokens: true, drop_policy: 'position', router_jitter: 0.01, balance_loss_coef: 0.01,
      z_loss_coef: 0.001, scale_by_prob: true, init_scale: 0.1, force_routing: 'learned', router: 'learned',
      score: 'softmax', norm_topk: true, topk_scaling: 1, balance: 'aux_loss', bias_update_rate: 1.0e-3,
      route_groups: 0, route_group_topk: 0,
    },
    parallel: {
      layout: 'coordinator', transport: 'threads', devices: 2, backend: 'wasm', coordinator_backend: 'wasm',
      payload: 'shared', timeout_ms: 60000, microbatches: 1, kernels: 'fused',
      fault: { device: -1, step: 0, kind: 'crash', delay_ms: 20 },
    },
    plan: {
      tp: 1, pp: 1, vpp: 1, decoder_first_pipeline_num_layers: 0, decoder_last_pipeline_num_layers: 0,
      account_for_embedding_in_pipeline_split: false, account_for_loss_in_pipeline_split: false, cp: 1, ep: 0, etp: 1,
      shard: 'none', micro_batch: 0, global_batch: 0, recompute: 'none', recompute_modules: [], precision: 'bf16',
      routing: 'recorded', dispatch: 'dropless', dispatcher: 'alltoall', dispatch_fwd_dtype: 'bf16', overlap: 'none',
      redundant_experts: 0,
    },
    train: {
      steps: 200, lr: 3e-3, min_lr: 3e-4, warmup_steps: 20, schedule: 'cosine', weight_decay: 0.1, beta1: 0.9,
      beta2: 0.99, grad_clip: 1.0, eval_every: 50, eval_batches: 4, log_every: 10, checkpoint_every: 100,
    },
  }));
  const partial = ConfigSchema.parse({ moe: { top_k: 2 } });
  t.is(partial.moe.top_k, 2);
  t.is(partial.moe.n_experts, DEFAULTS.moe.n_experts, 'a section given in part takes defaults for the rest');
});

/** A small model with multi-head latent attention. */
const MLA = ['model.kv_lora_rank=8', 'model.qk_nope_head_dim=8', 'model.qk_rope_head_dim=4', 'model.v_head_dim=8'];

/** One broken config per rule, in the order of RULES, with the line each gave before the one schema existed. */
const BROKEN: [string[], string][] = [
  [['model.d_model=130'], 'must be divisible by model.n_heads (4) (got 130)'],
  [['moe.n_experts=3'], 'must be divisible by parallel.devices (2) (got 3)'],
  [['data.batch_size=3'], 'must be divisible by parallel.devices (2): each device routes its own group of sequences (got 3)'],
  [['parallel.microbatches=3'], 'must divide parallel.devices (2): each micro-batch routes whole groups (got 3)'],
  [['parallel.transport=local', 'parallel.backend=cpu'], 'must equal parallel.coordinator_backend (wasm) with '
    + 'parallel.transport local: in-process devices compute on the coordinator\'s backend; use parallel.transport threads (got "cpu")'],
  [['parallel.layout=spmd', 'parallel.transport=local'],
    'must be threads with parallel.layout spmd: every device is a worker thread that meets the others at barriers (got "local")'],
  [['parallel.layout=spmd', 'parallel.microbatches=2'], 'must be 1 with parallel.layout spmd: each device runs its whole '
    + 'shard (micro-batches pipeline the coordinator layout only) (got 2)'],
  [['parallel.layout=spmd', 'parallel.backend=cpu'], 'must equal parallel.coordinator_backend (wasm) or be gpujs with '
    + 'parallel.layout spmd: a device runs its dense replica and its experts in one thread, on one tfjs backend (got "cpu")'],
  [['model.n_layers=4', 'model.first_dense_layers=3', 'model.switch_every=2'],
    'must be <= model.n_layers (4) - model.first_dense_layers (3), or the model has no Switch layer (got 2)'],
  [['model.n_kv_heads=3'], 'must divide model.n_heads (4): each key/value head serves a group of query heads (got 3)'],
  [['moe.force_routing=one-hot:9'], 'must name an expert below moe.n_experts (4) in one-hot:K (got "one-hot:9")'],
  [['moe.top_k=5'], 'must be <= moe.n_experts (4) (got 5)'],
  [['moe.score=sigmoid'], 'must be false with moe.score sigmoid and moe.top_k 1: one normalised gate is always 1 and '
    + 'the router would get no gradient (got true)'],
  [['moe.router=hash'], 'must be none with moe.router hash: a hash has no router to balance (got "aux_loss")'],
  [['moe.router=hash', 'moe.balance=none', 'moe.top_k=2'], 'must be 1 with moe.router hash: the hash names one expert per token (got 2)'],
  [['moe.router=hash', 'moe.balance=none', 'moe.force_routing=uniform'],
    'must be learned with moe.router hash: the hash already chooses (got "uniform")'],
  [['moe.route_group_topk=1', 'moe.route_groups=3'], 'must divide moe.n_experts (4) into equal groups (got 3)'],
  [['moe.route_group_topk=3', 'moe.top_k=3'], 'must be <= moe.route_groups (2) (got 3)'],
  [['moe.route_group_topk=2'], 'must be <= moe.top_k (1): each kept group gives at least one of the token\'s experts (got 2)'],
  [['moe.n_experts=8', 'moe.route_groups=4', 'moe.route_group_topk=1', 'moe.top_k=3'],
    'must leave at least moe.top_k (3) experts in the kept groups (2 experts a group) (got 1)'],
  [['moe.route_group_topk=1', 'moe.router=hash', 'moe.balance=none'], 'must be 0 with moe.router hash: the hash names the expert (got 1)'],
  [['train.min_lr=1'], 'must be <= train.lr (0.003) (got 1)'],
  [['parallel.fault.device=2'], 'must be < parallel.devices (2) or -1 for no fault (got 2)'],
  // Megatron-Core's plans and DeepSeek's attention (rules-plan.ts)
  ...(['q_lora_rank', 'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim'].map((k): [string[], string] =>
    [[`model.${k}=8`], 'must be 0 without multi-head latent attention (model.kv_lora_rank 0) (got 8)'])),
  ...(['qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim'].map((k): [string[], string] =>
    [[...MLA.filter((s) => !s.startsWith(`model.${k}=`)), `model.${k}=0`],
      'must be > 0 with multi-head latent attention (model.kv_lora_rank > 0) (got 0)'])),
  [[...MLA, 'model.n_kv_heads=2'], 'must be 0 or model.n_heads (4) with multi-head latent attention (Megatron-Core '
    + 'refuses grouped-query attention with MLA) (got 2)'],
  [[...MLA, 'model.head_dim=16'], 'must be 0 with multi-head latent attention: model.qk_nope_head_dim, qk_rope_head_dim '
    + 'and v_head_dim size the heads (got 16)'],
  [['model.mtp_layers=1', 'plan.cp=2'],
    "must be 0 with plan.cp 2: Megatron-Core's multi-token prediction does not support context parallelism (got 1)"],
  [['model.mtp_layers=2', 'plan.overlap=a2a'],
    "must be 0 or 1 with plan.overlap a2a (Megatron-Core's expert-parallel overlap takes at most one MTP layer) (got 2)"],
  [['plan.cp=3'], 'must be 1 or have 2 · plan.cp divide data.seq_len (64): Megatron-Core cuts each sequence into '
    + '2 · cp chunks, two per rank (got 3)'],
  [['plan.vpp=2'], 'must be 1 without pipeline parallelism (plan.pp 1) (got 2)'],
  [['plan.pp=3'], 'must be at most model.n_layers (2) (got 3)'],
  [['plan.pp=2', 'plan.decoder_first_pipeline_num_layers=1', 'plan.account_for_loss_in_pipeline_split=true'],
    'must be 0 with plan.account_for_embedding_in_pipeline_split or plan.account_for_loss_in_pipeline_split '
    + '(Megatron-Core takes one or the other) (got 1)'],
  [['plan.pp=2', 'plan.vpp=2', 'model.n_layers=6', 'plan.decoder_last_pipeline_num_layers=3'],
    'must be divisible by plan.vpp (2) (got 3)'],
  [['plan.recompute_modules=[moe_act]'],
    'must be empty unless plan.recompute is selective (it is none): Megatron-Core reads them only then (got ["moe_act"])'],
  [['plan.recompute=selective', 'plan.recompute_modules=[moe_act, moe_act]'], 'must name each module once (got ["moe_act","moe_act"])'],
  [['plan.recompute=selective', 'plan.recompute_modules=[mla_up_proj]'],
    'must not name mla_up_proj without multi-head latent attention (model.kv_lora_rank 0) (got ["mla_up_proj"])'],
  [['plan.recompute=selective', 'plan.recompute_modules=[moe]', 'plan.overlap=a2a'],
    'must not name moe with plan.overlap a2a (Megatron-Core\'s expert-parallel overlap refuses it) (got ["moe"])'],
  [['plan.overlap=a2a', 'plan.dispatcher=allgather'],
    'must be none with plan.dispatcher allgather: Megatron-Core overlaps the alltoall and flex dispatchers only (got "a2a")'],
  [['plan.dispatch=padded', 'plan.dispatcher=flex'],
    'must be dropless with plan.dispatcher flex (Megatron-Core\'s DeepEP backend refuses padding to capacity) (got "padded")'],
  [['plan.dispatch_fwd_dtype=mxfp8'],
    'must be bf16 unless plan.dispatcher is flex: Megatron-Core sets a wire dtype in its flex dispatcher only (got "mxfp8")'],
];

test('every rule between keys reports its one line, naming its key', (t) => {
  t.is(BROKEN.length, RULES.length, 'one case per rule');
  BROKEN.forEach(([sets, line], i) => t.is(err(sets), `config error: ${RULES[i]!.key} ${line}`, sets.join(' ')));
  t.is(err(['moe.force_routing=foo']),
    'config error: moe.force_routing must be learned, uniform, zipf:S (S a number >= 0) or one-hot:K (K an expert index) (got "foo")');
});
