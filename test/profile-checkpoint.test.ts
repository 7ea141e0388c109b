import test from 'ava';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { configHash } from '../src/core/config/hash.js';
import { train } from '../src/training/trainer.js';
import { cfg, cli, CORPUS, tempDir } from './helpers.js';

/** Every file under a directory: its path, size, modification time and content hash. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = `${statSync(p).size} ${statSync(p).mtimeMs} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    }
  };
  walk(dir);
  return out;
}

const config = cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32',
  'moe.n_experts=4', 'parallel.devices=2', 'train.steps=6', 'train.checkpoint_every=3', 'train.eval_every=0', 'train.eval_batches=1', 'train.log_every=1');

test.serial('profile --checkpoint: the steps continue the checkpoint\'s, profile.json names it, and the run directory is left byte for byte', async (t) => {
  const dir = tempDir(t);
  const run = join(dir, 'run');
  await train({ config, name: 't', outDir: run });
  const before = snapshot(run);
  const out = join(dir, 'profile');
  const r = await cli('profile', '--checkpoint', run, '--steps', '2', '--warmup', '1', '--out', out);
  t.is(r.status, 0, r.stderr);
  const p = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
  t.deepEqual(p.from_checkpoint, { dir: realpathSync(join(run, 'checkpoints', 'step-6')), step: 6 }, 'the run\'s latest checkpoint');
  t.deepEqual(p.steps, [9, 11], 'after step 6: a warm-up step (7), then unprofiled and profiled steps in turn');
  t.is(p.config.hash, configHash(config), 'the checkpoint\'s config is the base');
  t.regex(readFileSync(join(out, 'profile.html'), 'utf8'), /continuing from checkpoint .*step-6 \(step 6\)/);
  t.deepEqual(snapshot(run), before, 'nothing in the run directory changed');
  // an earlier checkpoint of the run, named directly
  const early = await cli('profile', '--checkpoint', join(run, 'checkpoints', 'step-3'), '--steps', '1', '--warmup', '0', '--out', join(dir, 'early'));
  t.is(early.status, 0, early.stderr);
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'early', 'profile.json'), 'utf8')).steps, [5]);
  t.deepEqual(snapshot(run), before);
});

test.serial('profile refuses (one line, exit 2) an --out that is the checkpoint\'s run directory or in its checkpoints, or holds a training run', async (t) => {
  const dir = tempDir(t);
  const run = join(dir, 'run');
  await train({ config, name: 't', outDir: run });
  const before = snapshot(run);
  const lines = (s: string) => s.trim().split('\n').filter((l) => l.trim() && !/^Warning:/.test(l));
  for (const out of [run, join(run, 'checkpoints'), join(run, 'checkpoints', 'step-6', 'p')]) {
    const r = await cli('profile', '--checkpoint', run, '--steps', '1', '--out', out);
    t.is(r.status, 2, out);
    const rule = 'profile --out must not be the checkpoint\'s run directory or inside its checkpoints, which the profile leaves as they are';
    t.deepEqual(lines(r.stderr), [`config error: ${rule} (got "${out}")`]);
  }
  const plain = await cli('profile', '--set', `data.dataset=${CORPUS}`, '--steps', '1', '--out', run);
  t.is(plain.status, 2);
  const rule = /^config error: profile --out must be a new directory or an earlier profile's, which it replaces /;
  const held = 'run\\.json, config\\.yaml, metrics\\.jsonl, summary\\.json, checkpoints';
  t.regex(lines(plain.stderr).join('\n'), new RegExp(`${rule.source}\\(got ".*run", which holds a run: ${held}\\)$`));
  t.deepEqual(snapshot(run), before);
});
