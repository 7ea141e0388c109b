import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { loadSweep } from '../src/apps/sweep/file.js';
import { train } from '../src/training/trainer.js';
import { runRemoteSweep } from '../src/apps/sweep/remote.js';
import { runWorker } from '../src/apps/sweep/worker.js';
import { queueName } from '../src/apps/sweep/queue.js';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { cli, CORPUS, tempDir } from './helpers.js';
import { startRedis, type LocalRedis } from './redis.js';

const BIN = new URL('../bin/switch-sim.js', import.meta.url).pathname;
const BASE = {
  data: { dataset: CORPUS, seq_len: 16, batch_size: 4 },
  model: { d_model: 16, n_heads: 2, n_layers: 2, d_ff: 32 },
  parallel: { transport: 'local', devices: 2 },
};

let redis: LocalRedis;
test.before(async () => {
  redis = await startRedis();
});
test.after.always(async () => {
  await redis?.stop();
});

/** A worker process on the test's Redis; resolves when it says it is taking points from a queue. */
function worker(runsDir: string, lockMs = 2000): ChildProcess {
  return spawn(process.execPath, [BIN, 'worker', '--queue', redis.url, '--runs-dir', runsDir, '--lock-ms', String(lockMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function stop(w: ChildProcess): Promise<void> {
  if (w.exitCode !== null || w.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    w.once('exit', () => resolve());
    w.kill('SIGKILL');
  });
}

const rows = (dir: string) => readFileSync(join(dir, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

test.serial('a 2 × 2 sweep over a Redis queue and two workers: every point done exactly once, with the losses a local run of the point gives', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'grid.yaml');
  writeFileSync(file, YAML.stringify({ base: BASE, grid: { 'moe.n_experts': [2, 4], 'moe.capacity_factor': [1.0, 2.0] }, set: { 'train.steps': 4, 'train.eval_every': 0, 'train.eval_batches': 1, 'train.log_every': 2 } }));
  const runs = join(dir, 'worker-runs');
  const ws = [worker(runs), worker(runs)];
  try {
    const remote = await runRemoteSweep({ file, outDir: join(dir, 'remote'), queue: redis.url, pollMs: 200 });
    t.is(remote.rows.length, 4);
    t.deepEqual(remote.rows.map((r) => r.status), ['ok', 'ok', 'ok', 'ok']);
    const sweep = loadSweep(file);
    t.deepEqual(rows(join(dir, 'remote')).map((r) => r.point).sort(), sweep.points.map((p) => p.name).sort(), 'every point exactly once');
    for (const r of remote.rows) {
      // what a local sweep runs for the point (its child's `train`), here in this process
      const local = await train({ config: sweep.points.find((p) => p.name === r.point)!.config, name: 't', outDir: join(dir, 'local', r.point) });
      t.is(r.train_ce, local.train_ce, `${r.point}: same seed, same losses`);
      t.is(r.val_ce, local.val_ce);
    }
    const workersUsed = new Set(remote.rows.map((r) => JSON.parse(readFileSync(join(dir, 'remote', 'runs', r.point, 'worker.json'), 'utf8')).worker));
    t.true(workersUsed.size >= 1);
    t.true(existsSync(join(dir, 'remote', 'report.html')));
    // --resume keeps the finished rows of --out; without it every point's job is followed again, and a finished job
    // of the same config is collected again, not rerun (the same run: its wall time is the job's own)
    const resumed = await runRemoteSweep({ file, outDir: join(dir, 'remote'), queue: redis.url, pollMs: 200, resume: true });
    t.is(resumed.skipped, 4);
    const again = await runRemoteSweep({ file, outDir: join(dir, 'remote'), queue: redis.url, pollMs: 200 });
    t.is(again.skipped, 0);
    t.deepEqual(again.rows.map((r) => [r.point, r.train_ce, r.wall_s]), remote.rows.map((r) => [r.point, r.train_ce, r.wall_s]));
  } finally {
    await Promise.all(ws.map(stop));
  }
});

test.serial('a worker killed in the middle of a point: another worker finishes it from the shared checkpoint, and it appears once', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'one.yaml');
  writeFileSync(file, YAML.stringify({ base: BASE, set: { 'train.steps': 60, 'train.eval_every': 0, 'train.eval_batches': 1, 'train.log_every': 1, 'train.checkpoint_every': 5 } }));
  const runs = join(dir, 'worker-runs');
  const first = worker(runs);
  let second: ChildProcess | undefined;
  try {
    let killed = false;
    const r = await runRemoteSweep({
      file, outDir: join(dir, 'remote'), queue: redis.url, pollMs: 200,
      onProgress: (_point, g) => {
        if (!killed && (g.step ?? 0) >= 12) {
          killed = true;
          first.kill('SIGKILL'); // mid-point, past a checkpoint
          second = worker(runs);
        }
      },
    });
    t.true(killed, 'the first worker was killed mid-point');
    t.is(r.rows.length, 1);
    t.is(r.rows[0]!.status, 'ok');
    const w = JSON.parse(readFileSync(join(dir, 'remote', 'runs', r.rows[0]!.point, 'worker.json'), 'utf8'));
    t.true(w.resumed_from >= 10, `the second worker resumed from step ${w.resumed_from}`);
    t.is(rows(join(dir, 'remote')).length, 1);
  } finally {
    await stop(first);
    if (second) await stop(second);
  }
});

test.serial('--jobs with --queue and --attempts without it are refused, one line and exit 2, before anything runs', async (t) => {
  const dir = tempDir(t);
  const file = smallSweep(dir, 'refused', 1);
  const jobs = await cli('sweep', file, '--queue', redis.url, '--jobs', '2', '--out', join(dir, 'out'));
  t.is(jobs.status, 2);
  const why = 'the workers run the points, each worker\'s --concurrency at once';
  t.is(jobs.stderr.trim(), `config error: --jobs must be left out with --queue: ${why} (got --jobs 2)`);
  const attempts = await cli('sweep', file, '--attempts', '3', '--out', join(dir, 'out'));
  t.is(attempts.status, 2);
  t.is(attempts.stderr.trim(), 'config error: --attempts needs --queue: only a queued point is retried (got --attempts 3 without --queue)');
  t.false(existsSync(join(dir, 'out')), 'nothing ran');
});

test.serial('a queued point that records a profile profiles its own final checkpoint on the worker, as a local sweep does', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'profiled.yaml');
  const set = { 'train.steps': 4, 'train.eval_every': 0, 'train.eval_batches': 1, 'train.log_every': 2 };
  writeFileSync(file, YAML.stringify({ base: BASE, record: ['train', 'profile'], set }));
  const w = worker(join(dir, 'worker-runs'));
  try {
    const r = await runRemoteSweep({ file, outDir: join(dir, 'remote'), queue: redis.url, pollMs: 200, profileSteps: 1 });
    t.deepEqual(r.rows.map((x) => x.status), ['ok'], JSON.stringify(r.rows.map((x) => x.error)));
    const profile = JSON.parse(readFileSync(join(dir, 'remote', 'runs', r.rows[0]!.point, 'profile', 'profile.json'), 'utf8'));
    t.is(profile.from_checkpoint.step, 4);
    t.regex(profile.from_checkpoint.dir, new RegExp(`/worker-runs/profiled/${r.rows[0]!.point}-[0-9a-f]+/checkpoints/step-4$`));
    t.is(r.rows[0]!.dispatch_overhead_fraction, profile.dispatch_overhead.fraction);
  } finally {
    await stop(w);
  }
});

test.serial('a bad or unreachable Redis URL: exit 2 with one line naming the URL, no hang', async (t) => {
  const bad = await cli('worker', '--queue', 'http://nowhere');
  t.is(bad.status, 2);
  t.is(bad.stderr.trim(), 'config error: --queue must look like redis://HOST:PORT[/DB] (got "http://nowhere")');
  const down = await cli('worker', '--queue', 'redis://127.0.0.1:1');
  t.is(down.status, 2);
  t.regex(down.stderr.trim(), /^config error: --queue redis:\/\/127\.0\.0\.1:1 is unreachable \(.*ECONNREFUSED.*\)$/);
  t.is(down.stderr.trim().split('\n').length, 1);
});

test.serial('a worker refuses a point from another switch-sim version, and a point that keeps failing is recorded as failed with its error', async (t) => {
  const dir = tempDir(t);
  const runs = join(dir, 'worker-runs');
  const w = worker(runs);
  const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName('foreign'), { connection: conn });
  try {
    const job = await queue.add('p', { sweep: 'foreign', point: 'p', seed: 1, vary: {}, config: {}, profileSteps: null, version: '0.0.1', schema: 'other' }, { jobId: 'p', attempts: 3 });
    const eventsConn = conn.duplicate();
    const events = new QueueEvents(queueName('foreign'), { connection: eventsConn });
    const reason = await new Promise<string>((resolve) => events.on('failed', ({ failedReason }) => resolve(failedReason)));
    await events.close();
    eventsConn.disconnect();
    t.regex(reason, /^worker .* runs switch-sim \d+\.\d+\.\d+ \(config schema [0-9a-f]+\); point p was enqueued by 0\.0\.1 \(schema other\): run workers of the sweep's version$/);
    t.is((await queue.getJob(job.id!))!.attemptsMade, 1, 'refused once, not retried');
    // a point whose training fails (its data file is missing) fails every attempt and is recorded with the error
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, YAML.stringify({ base: { ...BASE, data: { ...BASE.data, dataset: join(dir, 'missing.txt') } }, set: { 'train.steps': 2 } }));
    const r = await runRemoteSweep({ file, outDir: join(dir, 'remote'), queue: redis.url, pollMs: 200, attempts: 2 });
    t.is(r.rows[0]!.status, 'failed');
    t.regex(r.rows[0]!.error!, /missing\.txt/);
  } finally {
    await queue.close();
    conn.disconnect();
    await stop(w);
  }
});

test.serial('Ctrl-C on a worker: it finishes the point it is running, takes no other, and exits 0', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'two.yaml');
  writeFileSync(file, YAML.stringify({ base: BASE, grid: { 'moe.n_experts': [2, 4] }, set: { 'train.steps': 30, 'train.eval_every': 0, 'train.eval_batches': 1, 'train.log_every': 1 } }));
  const w = worker(join(dir, 'worker-runs'));
  const exited = new Promise<number | null>((resolve) => w.once('exit', (code) => resolve(code)));
  const abort = new AbortController();
  let interrupted: string | undefined;
  try {
    const run = runRemoteSweep({
      file, outDir: join(dir, 'remote'), queue: redis.url, pollMs: 200, signal: abort.signal,
      onProgress: (point, g) => {
        if (!interrupted && (g.step ?? 0) >= 3) {
          interrupted = point;
          w.kill('SIGINT');
        }
      },
      onPoint: (row) => {
        if (row.point === interrupted) abort.abort(); // the other point stays queued: nobody takes it
      },
    });
    t.is(await exited, 0, 'the worker exits cleanly after its point');
    const r = await run;
    t.is(r.rows.length, 1, 'exactly the point it was running');
    t.is(r.rows[0]!.point, interrupted!);
    t.is(r.rows[0]!.status, 'ok');
    t.true(r.interrupted, 'the other point is still queued');
  } finally {
    abort.abort();
    await stop(w);
  }
});

/** A small sweep file of `points` points (n_experts 2, 4, …) that finishes in a few seconds. */
function smallSweep(dir: string, name: string, points: number, steps = 4): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, YAML.stringify({ base: BASE, grid: { 'moe.n_experts': [2, 4, 8, 16].slice(0, points) }, set: { 'train.steps': steps, 'train.eval_every': 0, 'train.eval_batches': 1, 'train.log_every': 1 } }));
  return file;
}
const stepsOf = (dir: string, point: string) => JSON.parse(readFileSync(join(dir, 'runs', point, 'summary.json'), 'utf8')).steps as number;

test.serial('a job is the point and its config: the same sweep with another train.steps gives another, right, set of results', async (t) => {
  const dir = tempDir(t);
  const file = smallSweep(dir, 'identity', 1, 2);
  const w = worker(join(dir, 'worker-runs'));
  try {
    const two = await runRemoteSweep({ file, outDir: join(dir, 'two'), queue: redis.url, pollMs: 200 });
    const three = await runRemoteSweep({ file, sets: ['train.steps=3'], outDir: join(dir, 'three'), queue: redis.url, pollMs: 200 });
    t.deepEqual(two.rows.map((r) => r.status), ['ok']);
    t.deepEqual(three.rows.map((r) => r.status), ['ok']);
    for (const r of two.rows) t.is(stepsOf(join(dir, 'two'), r.point), 2);
    for (const r of three.rows) t.is(stepsOf(join(dir, 'three'), r.point), 3);
    t.is(three.skipped, 0, 'nothing of the 2-step results is taken for the 3-step sweep');
    // the same --out with the other config again: its rows are not reused, the 2-step jobs' results are collected anew
    const back = await runRemoteSweep({ file, outDir: join(dir, 'three'), queue: redis.url, pollMs: 200 });
    t.is(back.skipped, 0);
    for (const r of back.rows) t.is(stepsOf(join(dir, 'three'), r.point), 2);
    t.deepEqual(back.rows.map((r) => r.train_ce), two.rows.map((r) => r.train_ce));
  } finally {
    await stop(w);
  }
});

test.serial('--concurrency 2 is two points at once in all, over three sweep queues', async (t) => {
  const dir = tempDir(t);
  const abort = new AbortController();
  let now = 0;
  let most = 0;
  const lines: string[] = [];
  const running = runWorker({
    url: redis.url, concurrency: 2, runsDir: join(dir, 'worker-runs'), signal: abort.signal, lockMs: 5000, pollMs: 200,
    log: (l) => {
      lines.push(l);
      if (/ started$/.test(l)) most = Math.max(most, ++now);
      if (/ (done|failed: .*)$/.test(l)) now--;
    },
  });
  try {
    const sweeps = ['a', 'b', 'c'].map((n) => runRemoteSweep({ file: smallSweep(dir, `three-${n}`, 1), outDir: join(dir, n), queue: redis.url, pollMs: 200 }));
    const results = await Promise.all(sweeps);
    t.deepEqual(results.map((r) => r.rows.map((x) => x.status).join()), ['ok', 'ok', 'ok']);
    t.is(most, 2, `at most two points at once (log: ${lines.join(' | ')})`);
  } finally {
    abort.abort();
    await running;
  }
});

test.serial('a Redis that goes away mid-sweep: one line and exit 1 within 10 s; the same command resumes once it is back', async (t) => {
  const dir = tempDir(t);
  const own = await startRedis();
  const port = Number(new URL(own.url).port);
  const file = smallSweep(dir, 'lost', 1);
  const args = [BIN, 'sweep', file, '--queue', own.url, '--out', join(dir, 'out')];
  const sweep = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  sweep.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => sweep.once('exit', (code) => resolve(code)));
  // no worker: the points wait in the queue until the Redis goes away
  const conn = new Redis(own.url, { maxRetriesPerRequest: null });
  try {
    const q = new Queue(queueName('lost'), { connection: conn });
    while ((await q.getJobCounts('waiting')).waiting! < 1); // the point is enqueued
    await q.close();
    conn.disconnect();
    const t0 = performance.now();
    await own.stop();
    const code = await exited;
    const seconds = (performance.now() - t0) / 1000;
    t.is(code, 1);
    t.true(seconds < 10, `exited ${seconds.toFixed(1)} s after the Redis stopped`);
    const lines = stderr.split('\n').filter((l) => l.trim() && !/^Warning:/.test(l));
    t.is(lines.length, 1, stderr);
    t.regex(lines[0]!, /^error: lost the Redis at redis:\/\/127\.0\.0\.1:\d+ \(.*\); the points stay queued: run the same command again once it is back$/);
    const back = await startRedis(port);
    const w = spawn(process.execPath, [BIN, 'worker', '--queue', back.url, '--runs-dir', join(dir, 'worker-runs'), '--lock-ms', '2000'], { stdio: 'ignore' });
    try {
      const again = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
      t.is(again.status, 0, again.stderr);
      t.is(rows(join(dir, 'out')).length, 1);
    } finally {
      await stop(w);
      await back.stop();
    }
  } finally {
    conn.disconnect();
    await own.stop();
  }
});
