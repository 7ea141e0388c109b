import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateCheckpoint } from '../src/training/evaluate.js';
import { train } from '../src/training/trainer.js';
import { cfg, cli, CORPUS, tempDir } from './helpers.js';


test.serial('switch-sim eval scores a checkpoint as the trainer evaluated it, and at other capacity factors', async (t) => {
  const dir = tempDir(t);
  const config = cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2',
    'model.d_ff=32', 'moe.n_experts=4', 'parallel.devices=2', 'train.steps=12', 'train.eval_every=12', 'train.eval_batches=3', 'train.log_every=4',
    'moe.drop_policy=random');
  await train({ config, name: 't', outDir: dir });
  const val = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((r) => r.val_ce !== undefined);
  const r = await evaluateCheckpoint({ checkpoint: dir });
  t.is(r.step, 12);
  t.is(r.batches, 3);
  t.is(r.split, 'val');
  t.is(r.capacity_factor, 2);
  t.true(Math.abs(r.ce - val.val_ce) < 1e-6, `eval ${r.ce} vs trainer ${val.val_ce}`);
  t.is(r.layers.length, 2);
  for (const l of r.layers) {
    t.true(l.load_max_over_mean >= 1 && l.load_max_over_mean <= 4);
    t.true(l.router_entropy > 0 && l.router_entropy <= Math.log(4) + 1e-9);
  }
  const tight = await evaluateCheckpoint({ checkpoint: dir, sets: ['moe.eval_capacity_factor=0.25'] });
  t.is(tight.capacity_factor, 0.25);
  t.true(tight.drop_fraction > r.drop_fraction, `cf 0.25 drops ${tight.drop_fraction}, cf 2 drops ${r.drop_fraction}`);
  t.is(tight.layers[0]!.load_max_over_mean_first, r.layers[0]!.load_max_over_mean_first, 'the first layer routes the same tokens whatever the capacity');
  t.not(tight.layers[0]!.load_max_over_mean, r.layers[0]!.load_max_over_mean, 'kept choices move with the capacity');
  const trainSplit = await evaluateCheckpoint({ checkpoint: dir, split: 'train', batches: 1 });
  t.is(trainSplit.batches, 1);
  t.not(trainSplit.ce, r.ce);

  const viaCli = await cli('eval', '--checkpoint', dir, '--json', '--set', 'moe.eval_capacity_factor=0.25');
  t.is(viaCli.status, 0, viaCli.stderr);
  const line = JSON.parse(viaCli.stdout.trim().split('\n').at(-1)!);
  t.deepEqual(Object.keys(line), ['checkpoint', 'step', 'split', 'batches', 'capacity_factor', 'ce', 'drop_fraction', 'layers']);
  t.deepEqual(Object.keys(line.layers[0]), ['drop_fraction', 'load_max_over_mean', 'load_max_over_mean_first', 'router_entropy']);
  t.true(Math.abs(line.ce - tight.ce) < 1e-9);
  const table = await cli('eval', '--checkpoint', dir);
  t.regex(table.stdout, /^checkpoint .* \(step 12\), split val, 3 batches, eval capacity factor 2\nce \d\.\d{4} {2}drop fraction \d\.\d{4}\nlayer  drop_fraction/);
  const bad = await cli('eval', '--checkpoint', dir, '--split', 'test');
  t.is(bad.status, 2);
  t.regex(bad.stderr.trim(), /^error: option '--split <split>' argument 'test' is invalid\. Allowed choices are val, train\.$/);
});
