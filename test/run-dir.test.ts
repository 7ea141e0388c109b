import test from 'ava';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, resolveCheckpointDir } from '../src/training/checkpoint.js';
import { InterruptedError } from '../src/training/errors.js';
import { RunDir } from '../src/training/run-dir.js';
import { train, type TrainOptions } from '../src/training/trainer.js';
import type { Config } from '../src/core/config/defaults.js';
import { ConfigError } from '../src/core/config/errors.js';
import { cfg, cli, CORPUS, tempDir } from './helpers.js';

// runs never share a directory: a new run is refused where another is, --force replaces it, --resume continues only its own
const SETS = [`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2',
  'model.d_ff=32', 'parallel.transport=local', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1', 'train.checkpoint_every=3'];
const args = (...sets: string[]) => [...SETS, ...sets].flatMap((s) => ['--set', s]);
const small = (...sets: string[]) => cfg(...SETS, ...sets);
const bytes = (dir: string, f: string) => readFileSync(join(dir, f), 'utf8');
const steps = (dir: string) => bytes(dir, 'metrics.jsonl').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => 'loss' in r).map((r) => r.step);
const checkpoints = (dir: string) => readdirSync(join(dir, 'checkpoints')).sort();
const manifest = (ck: string) => join(ck, 'checkpoint.json');
/** Trains `config` in `dir` until Ctrl-C (the stop flag) after `step`: a checkpoint of that step, InterruptedError. */
async function interruptedAt(t: import('ava').ExecutionContext, config: Config, dir: string, step: number, more: Partial<TrainOptions> = {}) {
  const stop = { requested: false };
  const run = train({ config, name: 't', outDir: dir, ...more, stop, onStep: (s) => void (s.step === step && (stop.requested = true)) });
  await t.throwsAsync(run, { instanceOf: InterruptedError });
}
const editManifest = (ck: string, edit: (m: Record<string, unknown>) => void) => {
  const m = JSON.parse(readFileSync(manifest(ck), 'utf8'));
  edit(m);
  writeFileSync(manifest(ck), JSON.stringify(m));
};

test.serial('a new run into a directory that holds a run is refused in one line (exit 2), touching nothing; --force replaces that run', async (t) => {
  const dir = tempDir(t);
  t.is((await cli('train', ...args('train.steps=6'), '--out', dir)).status, 0);
  const before = { metrics: bytes(dir, 'metrics.jsonl'), run: bytes(dir, 'run.json'), checkpoints: checkpoints(dir) };
  const other = await cli('train', ...args('train.steps=4', 'model.d_model=24'), '--out', dir);
  t.is(other.status, 2);
  t.is(other.stdout, '', 'refused before anything is printed or trained');
  t.is(other.stderr.trim().split('\n').length, 1);
  const files = 'run\\.json, config\\.yaml, metrics\\.jsonl, summary\\.json, checkpoints';
  t.regex(other.stderr.trim(), new RegExp(`^config error: run directory ${dir} already holds a run \\(${files}\\): a new run never writes into `
    + `another run's directory; continue it with --resume ${dir}, or pass --force to delete that run and start this one there$`));
  t.deepEqual({ metrics: bytes(dir, 'metrics.jsonl'), run: bytes(dir, 'run.json'), checkpoints: checkpoints(dir) }, before);
  const forced = await cli('train', ...args('train.steps=4', 'model.d_model=24'), '--out', dir, '--force');
  t.is(forced.status, 0, forced.stderr);
  t.regex(forced.stdout, /--force: deleted the run in .* \(run\.json, config\.yaml, metrics\.jsonl, summary\.json, checkpoints\)/);
  t.deepEqual(checkpoints(dir), ['step-3', 'step-4'], 'none of the old run\'s checkpoints is left');
  t.deepEqual(steps(dir), [1, 2, 3, 4]);
  t.not(bytes(dir, 'run.json'), before.run, 'a new run, a new identity');
  t.is(loadCheckpoint(dir).config.model.d_model, 24);
});

test.serial('a directory with files that are not a run\'s (a sweep point\'s point.yaml and log.txt) takes a new run', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'point.yaml'), 'seed: 1\n');
  writeFileSync(join(dir, 'log.txt'), '');
  await train({ config: small('train.steps=1'), name: 't', outDir: dir });
  t.deepEqual(steps(dir), [1]);
  t.is(bytes(dir, 'point.yaml'), 'seed: 1\n');
});

test.serial('--resume refuses a checkpoint that is not of the directory\'s run, by run id and (older runs) by config', async (t) => {
  const [a, b] = [tempDir(t), tempDir(t)];
  await train({ config: small('train.steps=6', 'model.d_model=24'), name: 'a', outDir: a });
  await train({ config: small('train.steps=4'), name: 'b', outDir: b });
  // what the old trainer left: another run's later checkpoint beside this run's
  cpSync(join(a, 'checkpoints', 'step-6'), join(b, 'checkpoints', 'step-6'), { recursive: true });
  const metrics = bytes(b, 'metrics.jsonl');
  const r = await cli('train', '--resume', b);
  t.is(r.status, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  const ids = 'run [0-9a-f-]{36}, the directory\'s is [0-9a-f-]{36}';
  t.regex(r.stderr.trim(), new RegExp(`^error: checkpoint ${join(b, 'checkpoints', 'step-6')} is not of the run in ${b} \\(${ids}\\): `
    + `--resume continues only a directory's own run; to start from that checkpoint anyway, --resume .*step-6 --out another directory$`));
  // a run directory and checkpoint from before run ids: told apart by their configs
  rmSync(join(b, 'run.json'));
  editManifest(join(b, 'checkpoints', 'step-6'), (m) => delete m.run);
  const legacy = await cli('train', '--resume', b);
  t.is(legacy.status, 2);
  t.regex(legacy.stderr.trim(), /is not of the run in .* \(config [0-9a-f]{16}, the directory's config\.yaml is [0-9a-f]{16}\)/);
  t.is(bytes(b, 'metrics.jsonl'), metrics, 'nothing written');
  const branch = await cli('train', '--resume', join(b, 'checkpoints', 'step-6'), '--out', a);
  t.is(branch.status, 2, 'a branch into a directory with a run is refused too');
  t.regex(branch.stderr.trim(), /^config error: run directory .* already holds a run .*; choose another --out, or pass --force/);
});

test.serial('--resume from an earlier checkpoint drops the later ones: a later --resume never picks the abandoned continuation', async (t) => {
  const dir = tempDir(t);
  const config = small('train.steps=6', 'train.checkpoint_every=2');
  await train({ config, name: 't', outDir: dir });
  t.deepEqual(checkpoints(dir), ['step-2', 'step-4', 'step-6']);
  const lines: string[] = [];
  const from = join(dir, 'checkpoints', 'step-2');
  await interruptedAt(t, config, dir, 3, { outDir: undefined, resume: from, checkpoint: loadCheckpoint(from), log: (l) => lines.push(l) });
  t.true(lines.includes('dropped the checkpoints after step 2 (step-4, step-6): the run continues from step 2'), lines.join('\n'));
  t.deepEqual(checkpoints(dir), ['step-2', 'step-3']);
  t.is(resolveCheckpointDir(dir), join(dir, 'checkpoints', 'step-3'));
  t.deepEqual(steps(dir), [1, 2, 3]);
  t.false(existsSync(join(dir, 'summary.json')), 'the summary of the run that ended at step 6 is gone with it');
});

test.serial('the last checkpoint comes after the final evaluation and carries its time: a resume past it counts that evaluation', async (t) => {
  const dir = tempDir(t);
  await train({ config: small('train.steps=6', 'train.eval_batches=8'), name: 't', outDir: dir });
  const summary = JSON.parse(bytes(dir, 'summary.json'));
  const last = loadCheckpoint(dir);
  t.is(last.step, 6);
  t.true(summary.eval_s > 0);
  t.true(Math.abs(last.run!.totals!.eval_ms - summary.eval_s * 1000) < 1e-6, `${last.run!.totals!.eval_ms} ms vs ${summary.eval_s} s`);
  t.deepEqual(checkpoints(dir), ['step-3', 'step-6']);
});

test.serial('two runs started into one directory at once: one trains there, the other is refused before it writes', async (t) => {
  const dir = tempDir(t);
  const seeds = [1, 7];
  const runs = await Promise.allSettled(seeds.map((seed) =>
    train({ config: small('train.steps=4', `seed=${seed}`), name: 't', outDir: dir })));
  const won = runs.findIndex((r) => r.status === 'fulfilled');
  const lost = runs.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.is(lost.length, 1, 'exactly one of the two trained');
  t.true(lost[0]!.reason instanceof ConfigError);
  t.regex((lost[0]!.reason as Error).message, new RegExp(`^config error: run directory ${dir} (is in use by process `
    + `${process.pid} on .* \\(run\\.lock\\)|was taken by another run while this one started)`));
  t.deepEqual(steps(dir), [1, 2, 3, 4], 'every step logged once');
  for (const ck of checkpoints(dir)) t.is(loadCheckpoint(join(dir, 'checkpoints', ck)).config.seed, seeds[won]!, ck);
  t.false(existsSync(join(dir, 'run.lock')), 'the directory is given back at the end');
});

test.serial('run.lock: a live process of this machine holds the directory; a dead one, this process\'s own id (a restarted container) and another machine\'s are taken over', async (t) => {
  const lock = (dir: string, pid: number, host = hostname()) => writeFileSync(join(dir, 'run.lock'), JSON.stringify({ pid, host }));
  const sleeper = spawn('sleep', ['60']);
  t.teardown(() => sleeper.kill());
  const busy = tempDir(t);
  lock(busy, sleeper.pid!);
  const r = await cli('train', ...args('train.steps=1'), '--out', busy);
  t.is(r.status, 2);
  t.is(r.stderr, `config error: run directory ${busy} is in use by process ${sleeper.pid} on ${hostname()} (run.lock): one run `
    + `trains in a directory at a time; wait for it or choose another --out (if no run is using it, delete ${join(busy, 'run.lock')})\n`);
  t.deepEqual(readdirSync(busy), ['run.lock'], 'nothing written');
  const gone = spawnSync('true').pid;
  for (const [pid, host] of [[gone, hostname()], [process.pid, hostname()], [sleeper.pid!, 'another-machine']] as const) {
    const dir = tempDir(t);
    lock(dir, pid, host);
    const ok = await cli('train', ...args('train.steps=1'), '--out', dir);
    t.is(ok.status, 0, `${pid} on ${host}: ${ok.stderr}`);
    t.false(existsSync(join(dir, 'run.lock')), 'given back at the end');
  }
});

test.serial('a --resume whose run moved on after it looked (another process continued it) is refused before it drops anything', async (t) => {
  const dir = tempDir(t);
  const config = small('train.steps=6');
  await train({ config, name: 't', outDir: dir });
  const ck = loadCheckpoint(join(dir, 'checkpoints', 'step-3'));
  const run = RunDir.plan({ name: 't', checkpoint: ck, steps: 6 });
  cpSync(join(dir, 'checkpoints', 'step-6'), join(dir, 'checkpoints', 'step-9'), { recursive: true });
  t.throws(() => run.open(config), { instanceOf: ConfigError, message: new RegExp(`^config error: run directory ${dir} moved on `
    + 'while this run started \\(its newest checkpoint is step 9, was step 6\\)') });
  t.deepEqual(checkpoints(dir), ['step-3', 'step-6', 'step-9'], 'nothing dropped');
  t.false(existsSync(join(dir, 'run.lock')));
});

test.serial('Ctrl-C on the last step: the run finishes as it would have (final evaluation, checkpoint, summary)', async (t) => {
  const dir = tempDir(t);
  const stop = { requested: false };
  const s = await train({ config: small('train.steps=6', 'train.eval_batches=4'), name: 't', outDir: dir, stop,
    onStep: (x) => void (x.step === 6 && (stop.requested = true)) });
  t.is(s.steps, 6);
  const summary = JSON.parse(bytes(dir, 'summary.json'));
  t.true(Math.abs(loadCheckpoint(dir).run!.totals!.eval_ms - summary.eval_s * 1000) < 1e-6);
});

test.serial('--out under a file, or empty, is refused in one line (exit 2) before anything loads', async (t) => {
  const file = join(tempDir(t), 'f');
  writeFileSync(file, '');
  for (const out of [join(file, 'sub'), '']) {
    const r = await cli('train', ...args('train.steps=1'), '--out', out);
    t.is(r.status, 2, r.stderr);
    t.is(r.stdout, '');
    t.is(r.stderr.trim().split('\n').length, 1);
    t.regex(r.stderr, out ? /^config error: --out must be a directory path \(got ".*sub", which is under the file ".*f"\)$/m
      : /^config error: --out must be a directory path \(got "", which is empty\)$/m);
  }
});

test.serial('a branch from a run\'s last step writes that step\'s checkpoint in its directory, so it can go on', async (t) => {
  const [a, b] = [tempDir(t), tempDir(t)];
  t.is((await cli('train', ...args('train.steps=6'), '--out', a)).status, 0);
  const branch = await cli('train', '--resume', a, '--out', b);
  t.is(branch.status, 0, branch.stderr);
  t.deepEqual(checkpoints(b), ['step-6']);
  const on = await cli('train', '--resume', b, '--set', 'train.steps=8');
  t.is(on.status, 0, on.stderr);
  t.deepEqual(steps(b), [7, 8]);
});

test.serial('a device that fails while a checkpoint loads is a device failure (exit 1), not a bad checkpoint (exit 2)', async (t) => {
  const dir = tempDir(t);
  // experts of 2 × 256 × 2048 floats, with their moments 12 MB each: no device thread takes its half in 1 ms
  const big = ['model.d_model=256', 'model.d_ff=2048', 'moe.n_experts=4'];
  t.is((await cli('train', ...args('train.steps=1', ...big), '--out', dir)).status, 0);
  for (const layout of ['coordinator', 'spmd']) {
    const r = await cli('train', '--resume', dir, '--set', 'train.steps=4', '--set', 'parallel.transport=threads',
      '--set', 'parallel.devices=2', '--set', `parallel.layout=${layout}`, '--set', 'parallel.timeout_ms=1');
    t.is(r.status, 1, r.stderr);
    t.regex(r.stderr, /device \d \(experts [\d,]+\) failed during load: no answer within (parallel\.timeout_ms = )?1 ms/);
  }
});

test.serial('a resumed run\'s summary covers the whole run: training time, evaluation time and tokens carried in the checkpoint', async (t) => {
  const dir = tempDir(t);
  const config = small('train.steps=10', 'train.checkpoint_every=0', 'train.eval_every=4');
  await interruptedAt(t, config, dir, 5);
  const carried = loadCheckpoint(dir).run!.totals!;
  t.is(carried.tokens, 5 * 4 * 16);
  t.true(carried.train_ms > 0 && carried.eval_ms > 0 && carried.checkpoint_ms > 0);
  let resumedMs = 0;
  // log_every 1: each step's tokens/s is that step's alone, so its time is its tokens over it
  await train({ config, name: 't', resume: dir, onStep: (s) => (resumedMs += ((4 * 16) / s.tokensPerS) * 1000) });
  const summary = JSON.parse(bytes(dir, 'summary.json'));
  t.true(Math.abs(summary.train_s * 1000 - (carried.train_ms + resumedMs)) < 1e-6,
    `train_s ${summary.train_s} vs ${carried.train_ms} ms before and ${resumedMs} ms after`);
  t.true(Math.abs(summary.tokens_per_s * summary.train_s - 10 * 4 * 16) < 1e-6, 'tokens of all 10 steps over the time of all 10');
  t.true(summary.eval_s * 1000 > carried.eval_ms && summary.checkpoint_s * 1000 > carried.checkpoint_ms);
  t.true(Math.abs(summary.wall_s - (summary.train_s + summary.eval_s + summary.checkpoint_s)) < 1e-9);
  t.is(summary.note, undefined);
});

test.serial('train_ce after a resume averages the same last log_every steps as the uninterrupted run', async (t) => {
  const config = small('train.steps=8', 'train.log_every=4', 'train.checkpoint_every=0');
  const full = await train({ config, name: 't', outDir: tempDir(t) });
  const dir = tempDir(t);
  await interruptedAt(t, config, dir, 7);
  const resumed = await train({ config, name: 't', resume: dir });
  t.true(Math.abs(resumed.train_ce! - full.train_ce!) <= 1e-6 * full.train_ce!, `resumed ${resumed.train_ce} vs uninterrupted ${full.train_ce}`);
});

test.serial('a checkpoint from before run records still resumes; the times it lacks are null in summary.json, and said so', async (t) => {
  const dir = tempDir(t);
  const config = small('train.steps=4', 'train.checkpoint_every=2');
  await interruptedAt(t, config, dir, 2);
  editManifest(join(dir, 'checkpoints', 'step-2'), (m) => {
    delete m.run;
    m.format = 'switch-sim-checkpoint-v2';
  });
  const lines: string[] = [];
  const s = await train({ config, name: 't', resume: dir, log: (l) => lines.push(l) });
  const note = /^note: checkpoint .*step-2 does not record the run's time and tokens so far .*: summary\.json gives them as null$/;
  t.true(lines.some((l) => note.test(l)), lines.join('\n'));
  const summary = JSON.parse(bytes(dir, 'summary.json'));
  for (const k of ['wall_s', 'train_s', 'eval_s', 'checkpoint_s', 'tokens_per_s']) t.is(summary[k], null, k);
  t.regex(summary.note, /unknown/);
  t.is(typeof summary.train_ce, 'number');
  t.is(s.steps, 4);
  t.is(loadCheckpoint(dir).run!.totals, null, 'unknown stays unknown in the run\'s next checkpoints');
});

test.serial('--resume of a complete run says so in one line, exit 0, and changes no byte; without summary.json it only finishes it', async (t) => {
  const dir = tempDir(t);
  t.is((await cli('train', ...args('train.steps=6', 'train.eval_every=3'), '--out', dir)).status, 0);
  const files = ['summary.json', 'metrics.jsonl', 'config.yaml', 'run.json'];
  const before = files.map((f) => bytes(dir, f));
  const r = await cli('train', '--resume', dir);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, `run ${dir} is already complete (step 6 of 6): nothing to do, nothing changed\n`);
  t.is(r.stderr, '');
  t.deepEqual(files.map((f) => bytes(dir, f)), before);
  // a crash after the last checkpoint but before summary.json: the resume writes it, evaluating nothing again
  const summary = JSON.parse(before[0]!);
  rmSync(join(dir, 'summary.json'));
  t.is((await cli('train', '--resume', dir)).status, 0);
  const again = JSON.parse(bytes(dir, 'summary.json'));
  t.is(bytes(dir, 'metrics.jsonl'), before[1]!, 'no second val_ce for step 6');
  for (const k of ['steps', 'train_s', 'eval_s', 'tokens_per_s', 'train_ce', 'val_ce', 'best_val_ce', 'config_hash']) t.is(again[k], summary[k], k);
  const longer = await cli('train', '--resume', dir, '--set', 'train.steps=8');
  t.is(longer.status, 0, longer.stderr);
  t.deepEqual(steps(dir), [1, 2, 3, 4, 5, 6, 7, 8], 'more train.steps is no longer complete: it trains on');
});
