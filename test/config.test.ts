import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers.js';
import { resolveConfig } from '../src/core/config/load.js';
import { DEFAULTS } from '../src/core/config/defaults.js';

const err = (sets: string[], file?: string) => {
  try {
    resolveConfig({ sets, file });
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};

test('defaults validate and layers apply in order: defaults → file → --set', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'exp.yaml');
  writeFileSync(file, 'moe:\n  n_experts: 8\n  capacity_factor: 2\ntrain:\n  steps: 7\n');
  const { config, name } = resolveConfig({ file, sets: ['moe.capacity_factor=1.5', 'moe.drop_policy=priority'] });
  t.is(name, 'exp');
  t.is(config.moe.n_experts, 8);
  t.is(config.moe.capacity_factor, 1.5);
  t.is(config.moe.drop_policy, 'priority');
  t.is(config.train.steps, 7);
  t.is(config.model.d_model, DEFAULTS.model.d_model);
});

test('each kind of config error has its exact one-line message', (t) => {
  t.is(err(['moe.capacity_factor=0']), 'config error: moe.capacity_factor must be > 0 (got 0)');
  t.is(err(['moe.capacity_factr=1']), 'config error: unknown key moe.capacity_factr (did you mean moe.capacity_factor?)');
  t.is(err(['model.d_model=130']), 'config error: model.d_model must be divisible by model.n_heads (4) (got 130)');
  t.is(err(['moe.n_experts=3']), 'config error: moe.n_experts must be divisible by parallel.devices (2) (got 3)');
  t.is(err(['parallel.microbatches=3']), 'config error: parallel.microbatches must divide parallel.devices (2): each micro-batch routes whole groups (got 3)');
  t.is(err(['moe.top_k=1.5']), 'config error: moe.top_k must be an integer (got 1.5)');
  t.is(err(['moe.drop_policy=first']), 'config error: moe.drop_policy must be one of position|random|priority (got "first")');
  t.is(err(['data.batch_size=abc']), 'config error: data.batch_size must be a number (got "abc")');
  t.is(err(['train.beta2=1']), 'config error: train.beta2 must be < 1 (got 1)');
  t.is(err(['moe.drop_tokens=maybe']), 'config error: moe.drop_tokens must be a boolean (got "maybe")');
  t.is(err(['model.switch_every=3']), 'config error: model.switch_every must be <= model.n_layers (2), or the model has no Switch layer (got 3)');
  t.is(err(['parallel.fault.kind=slow', 'parallel.fault.delay_ms=-1']), 'config error: parallel.fault.delay_ms must be >= 0 (got -1)');
  t.is(err(['seed']), 'config error: --set must look like section.key=value (got "seed")');
  t.is(err([], '/nonexistent/x.yaml'), 'config error: config file not found: /nonexistent/x.yaml');
});

test('bad YAML names line and column; unknown keys in files are rejected with a suggestion', (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'model:\n  d_model: 64\n  n_heads: [4\n');
  t.regex(err([], bad), /^config error: .*bad\.yaml: invalid YAML at line \d+, column \d+: /);
  const unknown = join(dir, 'unknown.yaml');
  writeFileSync(unknown, 'modle:\n  d_model: 64\n');
  t.is(err([], unknown), 'config error: unknown key modle (did you mean model?)');
  const section = join(dir, 'section.yaml');
  writeFileSync(section, 'moe: 3\n');
  t.regex(err([], section), /^config error: moe must be a section with keys n_experts, /);
});

test('keys only simulate reads are refused by training with one line naming each; first_dense_layers, d_ff_expert, swiglu and shared experts train', async (t) => {
  const { assertTrainable } = await import('../src/core/model/trainable.js');
  const { isSwitchBlock } = await import('../src/core/model/params.js');
  const { switchBlocks } = await import('../src/core/model/stages.js');
  const refused: [string[], string][] = [
    [['model.n_kv_heads=2'], 'config error: model.n_kv_heads must be 0 or model.n_heads (4) in training: only switch-sim simulate reads it so far (got 2)'],
    [['model.head_dim=8'], 'config error: model.head_dim must be 0 or model.d_model / model.n_heads (16) in training: only switch-sim simulate reads it so far (got 8)'],
    [['model.kv_lora_rank=32', 'model.qk_nope_head_dim=8', 'model.qk_rope_head_dim=8', 'model.v_head_dim=8'],
      'config error: model.kv_lora_rank must be 0 (standard attention, not multi-head latent attention) in training: only switch-sim simulate reads it so far (got 32)'],
    [['model.mtp_layers=1'], 'config error: model.mtp_layers must be 0 (no multi-token prediction) in training: only switch-sim simulate reads it so far (got 1)'],
  ];
  for (const [sets, message] of refused) t.throws(() => assertTrainable(resolveConfig({ sets }).config), { message });
  t.throws(() => assertTrainable(resolveConfig({ sets: ['model.vocab_size=100'] }).config, 65), { message: /^config error: model\.vocab_size must be 0 or the data's vocabulary \(65\) in training/ });
  t.notThrows(() => assertTrainable(resolveConfig({ sets: ['model.vocab_size=65', 'moe.d_ff_expert=32', 'moe.top_k=3'] }).config, 65));
  t.notThrows(() => assertTrainable(resolveConfig({ sets: ['model.activation=swiglu', 'moe.shared_experts=1'] }).config, 65));
  const deep = resolveConfig({ sets: ['model.n_layers=6', 'model.first_dense_layers=2', 'model.switch_every=2'] }).config;
  t.deepEqual(switchBlocks(deep), [3, 5], 'after two dense blocks, every other block');
  t.false(isSwitchBlock(deep, 1));
  t.is(err(['model.n_layers=4', 'model.first_dense_layers=3', 'model.switch_every=2']), 'config error: model.switch_every must be <= model.n_layers (4) - model.first_dense_layers (3), or the model has no Switch layer (got 2)');
  t.is(err(['model.n_kv_heads=3']), 'config error: model.n_kv_heads must divide model.n_heads (4): each key/value head serves a group of query heads (got 3)');
  t.is(err(['plan.recompute=some']), 'config error: plan.recompute must be one of none|selective|full (got "some")');
});

test('every --set and file error is one line naming the key, whatever the key and value', async (t) => {
  const { allKeys, validateConfig } = await import('../src/core/config/load.js');
  for (const key of allKeys()) {
    const message = err([`${key}={a: 1}`]);
    t.true(message.startsWith(`config error: ${key} `), message);
    t.false(/[\r\n]/.test(message), message);
  }
  t.is(err(['parallel.fault={a: 1}']), 'config error: parallel.fault is a section: set one of its keys '
    + '(parallel.fault.device, parallel.fault.step, parallel.fault.kind, …) (got {"a":1})');
  t.is(err(['data.dataset=']), 'config error: data.dataset must not be empty (got "")');
  t.is(err(['train.lr=.inf']), 'config error: train.lr must be a finite number (got Infinity)');
  t.is(err(['model.d_model=1e9']), 'config error: model.d_model must be <= 8192 (got 1000000000)');
  const dir = tempDir(t);
  const file = join(dir, 'odd.yaml');
  writeFileSync(file, 'moe:\n  "top\\nk": 1\n');
  t.is(err([], file), 'config error: unknown key moe.top\\nk (did you mean moe.top_k?)');
  const partial = structuredClone(DEFAULTS) as Partial<typeof DEFAULTS>;
  delete partial.plan;
  t.deepEqual(validateConfig(partial).plan, DEFAULTS.plan, 'a saved config from before a key existed takes its default');
  const older = structuredClone(DEFAULTS) as unknown as { plan: Record<string, unknown> };
  delete older.plan.cp;
  t.is(validateConfig(older).plan.cp, 1);
  t.throws(() => validateConfig(3), { message: 'config error: the config must be a mapping of keys (got 3)' });
});
