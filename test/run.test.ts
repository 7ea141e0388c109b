import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceError } from '../src/runtime/devices/errors.js';
import { configHash, ownCommit } from '../src/training/provenance.js';
import { train } from '../src/training/trainer.js';
import { cfg, CORPUS, tempDir } from './helpers.js';

const small = (...sets: string[]) =>
  cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32',
    'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1', 'train.checkpoint_every=0', ...sets);
const records = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

test.serial('after a crash, --resume continues in the same run directory and metrics.jsonl has every step once', async (t) => {
  const dir = tempDir(t);
  const crash = small('parallel.transport=threads', 'train.steps=8', 'train.checkpoint_every=3', 'parallel.fault.device=1', 'parallel.fault.step=5',
    'parallel.fault.kind=crash');
  await t.throwsAsync(train({ config: crash, name: 't', outDir: dir }), { instanceOf: DeviceError });
  t.deepEqual(records(dir).map((r) => r.step), [1, 2, 3, 4], 'step 4 was logged after the step-3 checkpoint');
  const resumed = await train({ config: small('train.steps=8'), name: 't', resume: dir });
  t.is(resumed.dir, dir, 'the resumed run writes where it was');
  t.deepEqual(records(dir).filter((r) => 'loss' in r).map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8]);
  const other = tempDir(t);
  const elsewhere = await train({ config: small('train.steps=9'), name: 't', resume: dir, outDir: other });
  t.is(elsewhere.dir, other);
  t.deepEqual(records(other).filter((r) => 'loss' in r).map((r) => r.step), [9]);
});

test.serial('summary: tokens/s over training time only, eval and checkpoint time apart, one final evaluation, provenance', async (t) => {
  const dir = tempDir(t);
  const config = small('parallel.transport=local', 'train.steps=8', 'train.log_every=3', 'train.eval_every=4', 'train.checkpoint_every=4', 'train.eval_batches=2');
  const ces: number[] = [];
  const s = await train({ config, name: 't', outDir: dir, onStep: (r) => ces.push(r.ce) });
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  t.is(summary.tokens_per_s, (8 * 4 * 16) / summary.train_s);
  t.true(summary.eval_s > 0 && summary.checkpoint_s > 0);
  t.true(Math.abs(summary.wall_s - (summary.train_s + summary.eval_s + summary.checkpoint_s)) < 1e-9);
  const recs = records(dir);
  const vals = recs.filter((r) => 'val_ce' in r);
  t.deepEqual(vals.map((r) => r.step), [4, 8], 'the last step is evaluated once');
  t.is(summary.val_ce, vals[1].val_ce);
  t.is(summary.best_val_ce, Math.min(vals[0].val_ce, vals[1].val_ce));
  t.true(Math.abs(summary.train_ce - (ces[5]! + ces[6]! + ces[7]!) / 3) < 1e-12, 'train_ce averages the last log_every steps');
  for (const r of recs) t.false(Number.isNaN(Date.parse(r.time)), `step ${r.step} has a wall-clock time`);
  t.is(summary.switch_sim_version, JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
  t.is(summary.tfjs_version, '4.22.0');
  t.true(summary.git_commit === null || /^[0-9a-f]{40}$/.test(summary.git_commit));
  t.is(summary.config_hash, configHash(config));
  t.is(s.val_ce, summary.val_ce);
});

test('config hash: equal configs hash equally whatever the key order; any change changes it', (t) => {
  const a = small();
  const reversed = (v: unknown): unknown => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)])) : v);
  const b = reversed(a) as typeof a;
  t.not(JSON.stringify(a), JSON.stringify(b));
  t.is(configHash(a), configHash(b));
  t.not(configHash(a), configHash(small('moe.capacity_factor=1.5')));
});

test('git_commit is switch-sim\'s own commit: null for a folder that only lies inside another repository', (t) => {
  const repo = tempDir(t);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
  git('init', '-q');
  git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'another project');
  mkdirSync(join(repo, 'node_modules', 'switch-sim'), { recursive: true });
  t.is(ownCommit(join(repo, 'node_modules', 'switch-sim')), null, 'installed inside another project');
  t.is(ownCommit(repo), git('rev-parse', 'HEAD'), 'a checkout of its own');
  t.is(ownCommit(tmpdir()), null, 'no repository at all');
});
