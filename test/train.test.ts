import test from 'ava';
import { existsSync, readdirSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { InterruptedError } from '../src/training/errors.js';
import { CheckpointError } from '../src/runtime/coordinator/restore.js';
import { loadCheckpoint } from '../src/training/checkpoint.js';
import { sample } from '../src/training/sample.js';
import { train } from '../src/training/trainer.js';
import { cfg, CORPUS, tempDir } from './helpers.js';

const small = (...sets: string[]) =>
  cfg(`data.dataset=${CORPUS}`, 'data.seq_len=32', 'data.batch_size=4', 'model.d_model=32', 'model.n_heads=2',
    'model.n_layers=2', 'model.d_ff=64', 'moe.n_experts=4', 'parallel.devices=2', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=2',
    'train.warmup_steps=5', 'train.lr=0.01', ...sets);

const losses = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => 'loss' in r);

test.serial('a short run lowers the loss and writes metrics, summary and a checkpoint', async (t) => {
  const dir = tempDir(t);
  const s = await train({ config: small('train.steps=40', 'train.eval_every=20'), name: 't', outDir: dir });
  const first = s.losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const last = s.losses.slice(-5).reduce((a, b) => a + b) / 5;
  t.true(last < first - 0.5, `loss ${first} → ${last}`);
  const recs = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const step = recs.find((r) => r.step === 10 && 'loss' in r);
  for (const k of ['step', 'lr', 'loss', 'ce', 'balance_loss', 'z_loss', 'tokens_per_s', 'layers']) t.true(k in step, `metrics has ${k}`);
  const layer = step.layers[0];
  for (const k of ['tokens_per_expert', 'group_expert_counts', 'drop_fraction', 'router_entropy', 'load_max_over_mean', 'device_compute_ms', 'wait_ms']) t.true(k in layer, `layer has ${k}`);
  t.deepEqual([layer.group_expert_counts.length, layer.group_expert_counts[0].length], [2, 4]);
  t.true(recs.some((r) => r.step === 20 && typeof r.val_ce === 'number'));
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  for (const k of ['steps', 'wall_s', 'tokens_per_s', 'train_ce', 'val_ce', 'params_total', 'params_active_per_token']) t.true(k in summary, `summary has ${k}`);
  t.true(summary.params_active_per_token < summary.params_total);
  t.true(existsSync(join(dir, 'checkpoints', 'step-40', 'checkpoint.json')));
  const text = await sample({ checkpoint: dir, prompt: 'Ishmael', tokens: 20, temperature: 0.8, topK: 10, seed: 1 });
  t.is(text.text.length, 'Ishmael'.length + 20);
  t.true(text.text.startsWith('Ishmael'));
});

test.serial('resume equals the uninterrupted run; Ctrl-C (stop flag) saves a checkpoint and throws InterruptedError', async (t) => {
  const config = small('train.steps=12', 'train.checkpoint_every=0', 'model.dropout=0.1', 'moe.drop_policy=random');
  const full = tempDir(t);
  await train({ config, name: 't', outDir: full });
  const cut = tempDir(t);
  const stop = { requested: false };
  const err = await t.throwsAsync(train({ config, name: 't', outDir: cut, stop, onStep: (s) => { if (s.step === 5) stop.requested = true; } }));
  t.true(err instanceof InterruptedError);
  t.true(existsSync(join(cut, 'checkpoints', 'step-5', 'checkpoint.json')));
  const resumed = tempDir(t);
  await train({ config, name: 't', outDir: resumed, resume: cut });
  const a = losses(full).filter((r) => r.step > 5).map((r) => r.loss);
  const b = losses(resumed).map((r) => r.loss);
  t.is(b.length, 7);
  a.forEach((x, i) => t.true(Math.abs(x - b[i]!) / Math.abs(x) <= 1e-6, `step ${i + 6}: ${x} vs ${b[i]}`));
});

test.serial('a corrupt or mismatched checkpoint is refused with a clear error', async (t) => {
  const dir = tempDir(t);
  await train({ config: small('train.steps=2', 'train.eval_batches=1'), name: 't', outDir: dir });
  const ck = join(dir, 'checkpoints', 'step-2');
  const bad = tempDir(t);
  cpSync(ck, bad, { recursive: true });
  const wf = readdirSync(bad).find((f) => f.endsWith('.bin'))!;
  const w = readFileSync(join(bad, wf));
  w[100] = w[100]! ^ 0xff;
  writeFileSync(join(bad, wf), w);
  t.throws(() => loadCheckpoint(bad), { instanceOf: CheckpointError, message: /weights-[0-9a-f]+\.bin is corrupt/ });
  t.throws(() => loadCheckpoint(tempDir(t)), { instanceOf: CheckpointError, message: /no checkpoint in/ });
  const e = await t.throwsAsync(train({ config: small('train.steps=4', 'model.d_model=64'), name: 't', outDir: tempDir(t), resume: dir }));
  t.true(e instanceof CheckpointError);
  t.regex(e!.message, /checkpoint parameter wte has shape \[\d+,32\], the model needs \[\d+,64\]/);
});
