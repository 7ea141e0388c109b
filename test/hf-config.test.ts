import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hfConfig } from '../src/core/config/hf.js';
import { resolveConfig } from '../src/core/config/load.js';
import { parseLayerFreq, switchPattern } from '../src/core/config/moe-layers.js';
import { isSwitchBlock } from '../src/core/model/params.js';
import { loadCluster } from '../src/sim/cluster.js';
import { project } from '../src/sim/project.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { cli } from './helpers.js';

/**
 * Hugging Face config.json files as --config. The fixtures in test/fixtures/hf hold the published values the
 * research notes give (transformers' configuration classes, NVIDIA's Megatron-MoE-ModelZoo yamls); none is
 * invented. Values the notes mark as from memory of huggingface.co, not read from a source here: Mixtral's
 * max_position_embeddings 32768 and router_aux_loss_coef 0.02; Qwen3's norm_topk_prob true; DeepSeek-V3's
 * max_position_embeddings 163840; OLMoE's intermediate_size 1024 (which gives its 6.9 B / 1.3 B parameters) and
 * rope_theta. Mixtral's head_dim (128) is not in its config.json: it is hidden_size / num_attention_heads.
 * configs/models/switch-base.yaml has no counterpart: Switch-Base is an encoder-decoder (transformers'
 * SwitchTransformers, T5-style), not a decoder-only family this maps.
 */
const FIXTURE = (name: string) => new URL(`./fixtures/hf/${name}.json`, import.meta.url).pathname;
const SHIPPED = (name: string) => new URL(`../configs/models/${name}.yaml`, import.meta.url).pathname;
const hf = (json: Record<string, unknown>) => hfConfig(json, 'config.json');
const refusal = (json: Record<string, unknown>) => {
  try {
    hf(json);
    return 'accepted';
  } catch (e) {
    return (e as Error).message;
  }
};

test('the shipped Mixtral-8x7B and Qwen3-30B-A3B configs have the model and moe sections of their config.json, and project alike', (t) => {
  for (const [name, cluster] of [['mixtral-8x7b', '64x8xh100'], ['qwen3-30b-a3b', '2x8xh100']] as const) {
    const shipped = resolveConfig({ file: SHIPPED(name) }).config;
    const fromHf = resolveConfig({ file: FIXTURE(name) }).config;
    t.deepEqual(fromHf.model, shipped.model, name);
    t.deepEqual(fromHf.moe, shipped.moe, name);
    // the same projection: the shipped file's data, parallel and plan over the config.json's model
    const c = loadCluster(new URL(`../configs/clusters/${cluster}.yaml`, import.meta.url).pathname);
    const over = resolveConfig({ base: { ...shipped, model: fromHf.model, moe: fromHf.moe } }).config;
    t.is(project(c, uniformWorkload(over)).step_ms, project(c, uniformWorkload(shipped)).step_ms, name);
  }
});

test("DeepSeek-V3's config.json: the shipped config's model (MLA and MTP included) and moe sections", (t) => {
  const shipped = resolveConfig({ file: SHIPPED('deepseek-v3') }).config;
  const fromHf = resolveConfig({ file: FIXTURE('deepseek-v3') }).config;
  t.deepEqual(fromHf.moe, shipped.moe);
  t.deepEqual(fromHf.model, shipped.model);
  const m = hf(JSON.parse(readFileSync(FIXTURE('deepseek-v3'), 'utf8')) as Record<string, unknown>);
  t.is(m.family, 'deepseek_v3');
  t.deepEqual(m.ignored, ['max_position_embeddings', 'rope_theta'], 'what switch-sim does not model is listed, not refused');
});

test('Qwen3-235B-A22B and OLMoE: head_dim from config.json (not hidden / heads), kv heads equal to heads as 0', (t) => {
  const qwen = resolveConfig({ file: FIXTURE('qwen3-235b-a22b') }).config;
  t.like(qwen.model, { n_layers: 94, d_model: 4096, n_heads: 64, n_kv_heads: 4, head_dim: 128, d_ff: 12288 });
  t.like(qwen.moe, { n_experts: 128, top_k: 8, d_ff_expert: 1536, norm_topk: true, drop_tokens: false });
  const olmoe = resolveConfig({ file: FIXTURE('olmoe-1b-7b'), sets: ['model.n_layers=4'] }).config;
  t.like(olmoe.model, { n_layers: 4, d_model: 2048, n_heads: 16, n_kv_heads: 0, head_dim: 128, d_ff: 1024, vocab_size: 50304 },
    '--set layers over the config.json');
  t.like(olmoe.moe, { n_experts: 64, top_k: 8, d_ff_expert: 0, norm_topk: false });
});

test('hand-worked families: Qwen1.5-MoE (Qwen2-MoE) shared expert, DeepSeek-V2 (MLA without MTP), Kimi-style architectures', (t) => {
  // Qwen1.5-MoE-A2.7B (transformers Qwen2MoeConfig defaults): one shared expert of 5632 = 4 experts of 1408
  const qwen2 = hf({ model_type: 'qwen2_moe', num_hidden_layers: 24, hidden_size: 2048, num_attention_heads: 16,
    num_key_value_heads: 16, moe_intermediate_size: 1408, shared_expert_intermediate_size: 5632, num_experts: 60,
    num_experts_per_tok: 4, norm_topk_prob: false });
  t.deepEqual(qwen2.tree.moe, { top_k: 4, drop_tokens: false, n_experts: 60, d_ff_expert: 1408, norm_topk: false, shared_experts: 4 });
  t.like(qwen2.tree.model, { n_layers: 24, n_kv_heads: 0, head_dim: 128, first_dense_layers: 0, switch_every: 1 });
  // DeepSeek-V2: 1 dense block, 160 routed and 2 shared experts, top-6, softmax, routed_scaling_factor 16
  const v2 = hf({ architectures: ['DeepseekV2ForCausalLM'], num_hidden_layers: 60, hidden_size: 5120, num_attention_heads: 128,
    intermediate_size: 12288, moe_intermediate_size: 1536, n_routed_experts: 160, n_shared_experts: 2, num_experts_per_tok: 6,
    first_k_dense_replace: 1, q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128,
    scoring_func: 'softmax', routed_scaling_factor: 16.0, norm_topk_prob: false, tie_word_embeddings: false });
  t.is(v2.family, 'deepseek_v2');
  t.like(v2.tree.model, { first_dense_layers: 1, switch_every: 1, d_ff: 12288, kv_lora_rank: 512, mtp_layers: 0, head_dim: 0 });
  t.like(v2.tree.moe, { n_experts: 160, shared_experts: 2, top_k: 6, score: 'softmax', topk_scaling: 16, norm_topk: false });
  // a model_type of its own over DeepSeek-V3's class (as Kimi K2 ships) maps by its architecture
  const v3 = JSON.parse(readFileSync(FIXTURE('deepseek-v3'), 'utf8')) as Record<string, unknown>;
  t.is(hf({ ...v3, model_type: 'kimi_k2' }).family, 'deepseek_v3');
});

test("which blocks are sparse: Qwen's decoder_sparse_step and mlp_only_layers, Megatron's --moe-layer-freq", (t) => {
  const base = { model_type: 'qwen3_moe', num_hidden_layers: 6, hidden_size: 64, num_attention_heads: 4, intermediate_size: 96,
    moe_intermediate_size: 32, num_experts: 4, num_experts_per_tok: 2 };
  t.like(hf({ ...base, decoder_sparse_step: 2 }).tree.model, { first_dense_layers: 0, switch_every: 2 }, 'blocks 1, 3, 5');
  t.like(hf({ ...base, mlp_only_layers: [0, 1] }).tree.model, { first_dense_layers: 2, switch_every: 1 }, 'blocks 2 to 5');
  t.is(refusal({ ...base, mlp_only_layers: [3] }), 'config error: config.json: mlp_only_layers must leave MoE blocks that '
    + 'switch-sim can place (first dense blocks, then every k-th) (got [3])');
  // the pattern agrees with the trainer's own rule, block by block
  for (const flags of [[false, false, true, false, true, false, true], [false, true, true, true]]) {
    const p = switchPattern(flags)!;
    const config = resolveConfig({ sets: [`model.n_layers=${flags.length}`, `model.first_dense_layers=${p.first_dense_layers}`,
      `model.switch_every=${p.switch_every}`] }).config;
    t.deepEqual(flags.map((_, l) => isSwitchBlock(config, l)), flags);
  }
  t.deepEqual(parseLayerFreq('([0]*3+[1]*2)', 5), [false, false, false, true, true]);
  t.deepEqual(parseLayerFreq('2', 4), [true, false, true, false], 'an integer N: block l is MoE when l % N == 0');
  t.is(switchPattern([true, false, true, false]), undefined, "Megatron's every-other from block 0 has no switch-sim pattern");
  t.is(parseLayerFreq('[1]*3', 4), 'must list one entry per block (model.n_layers 4; it lists 3)');
});

test('architectures it cannot map and keys it cannot represent are refused by name, in one line', (t) => {
  const mixtral = JSON.parse(readFileSync(FIXTURE('mixtral-8x7b'), 'utf8')) as Record<string, unknown>;
  t.is(refusal({ architectures: ['LlamaForCausalLM'], model_type: 'llama' }), 'config error: config.json: architectures must '
    + 'name a mixture-of-experts model switch-sim maps (MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, '
    + 'DeepseekV2ForCausalLM, DeepseekV3ForCausalLM, OlmoeForCausalLM) (got ["LlamaForCausalLM"])');
  t.is(refusal({ ...mixtral, tie_word_embeddings: true }), 'config error: config.json: tie_word_embeddings must be false: '
    + 'switch-sim keeps the embedding and the output layer apart (got true)');
  t.is(refusal({ ...mixtral, sliding_window: 4096 }),
    'config error: config.json: sliding_window must be null: switch-sim models full causal attention (got 4096)');
  t.is(refusal({ ...mixtral, hidden_act: 'gelu' }),
    'config error: config.json: hidden_act must be silu: switch-sim maps these SiLU-gated MLPs as swiglu (got "gelu")');
  t.is(refusal({ ...mixtral, num_local_experts: undefined }),
    'config error: config.json: num_local_experts is needed to map a mixtral config (got nothing)');
  t.is(refusal({ model_type: 'qwen2_moe', num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, num_experts: 4,
    num_experts_per_tok: 1, moe_intermediate_size: 32, shared_expert_intermediate_size: 48 }),
  'config error: config.json: shared_expert_intermediate_size must be a multiple of moe_intermediate_size (32) (got 48)');
  t.deepEqual(hf(mixtral).ignored, ['max_position_embeddings', 'rope_theta', 'router_aux_loss_coef']);
});

test.serial('the CLI: a config.json it cannot map exits 2 with one line; train refuses what a mapped one needs simulate for', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const llama = join(dir, 'config.json');
  writeFileSync(llama, JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', num_hidden_layers: 2 }));
  const r = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--config', llama);
  t.is(r.status, 2);
  t.regex(r.stderr, /^config error: .*config\.json: architectures must name a mixture-of-experts model switch-sim maps .*\(got \["LlamaForCausalLM"\]\)\n$/);
  const train = await cli('train', '--config', FIXTURE('mixtral-8x7b'), '--set', 'model.n_layers=1');
  t.is(train.status, 2, 'training refuses what only simulate reads (grouped-query attention)');
  t.regex(train.stderr, /^config error: model\.n_kv_heads must be 0 or model\.n_heads/);
});
