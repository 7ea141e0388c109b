import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import YAML from 'yaml';
import { connectRedis, SCHEMA, sweepQueues, VERSION, type PointJob, type PointResult } from './queue.js';
import { maxOf } from '../util/extremes.js';

const BIN = new URL('../../bin/switch-sim.js', import.meta.url).pathname;

export interface WorkerOptions {
  url: string;
  concurrency?: number;
  /** where points run and keep their checkpoints (shared between workers: a handed-over point resumes) */
  runsDir: string;
  log?: (line: string) => void;
  /** Ctrl-C: take no new job, let the running ones finish, then return */
  signal?: AbortSignal;
  /** how long a job's lock lasts without renewal: a worker that died is noticed after about this long */
  lockMs?: number;
}

const me = () => `${hostname()}:${process.pid}`;

/** the points' training processes: in process groups of their own, so that a terminal's Ctrl-C reaches the worker only */
const children = new Set<ReturnType<typeof spawn>>();

/** A second Ctrl-C: the running points save a checkpoint and stop (their locks lapse and other workers resume them). */
export function interruptPoints(): void {
  for (const p of children) p.kill('SIGINT');
}
const readJson = (f: string) => (existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : null);

/** Runs a CLI command for a job; stdout's step lines become the job's progress. */
function run(args: string[], job: Job, log: string): Promise<{ code: number; lastError: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(p);
    let err = '';
    let tail = ''; // the last lines of stdout only: a long run's output is not kept
    p.stdout!.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).split('\n').slice(-3).join('\n');
      writeFileSync(log, d, { flag: 'a' });
      const m = /step (\d+)\/(\d+) loss ([\d.]+) .* (\d+) tok\/s/.exec(tail.split('\n').filter((l) => l.trim()).at(-1) ?? '');
      if (m) void job.updateProgress({ worker: me(), step: +m[1]!, steps: +m[2]!, loss: +m[3]!, tokens_per_s: +m[4]! }).catch(() => {});
    });
    p.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).split('\n').slice(-20).join('\n'); // the last error line is what the job reports
      writeFileSync(log, d, { flag: 'a' });
    });
    p.on('close', (code, signal) => (children.delete(p), resolve({ code: code ?? (signal ? 128 : 1), lastError: err.trim().split('\n').filter((l) => l.trim() && !/^Warning:/.test(l)).at(-1) ?? '' })));
  });
}

/** The newest checkpoint step under a run directory, if any. */
function checkpointStep(runDir: string): number | null {
  const dir = join(runDir, 'checkpoints');
  if (!existsSync(dir)) return null;
  const steps = readdirSync(dir).map((d) => /^step-(\d+)$/.exec(d)).filter((m): m is RegExpExecArray => m !== null).map((m) => +m[1]!);
  return steps.length ? maxOf(steps) : null;
}

/** One point: train (resuming from a checkpoint a previous worker left in the shared runs directory), profile if asked. */
async function processPoint(job: Job<PointJob>, runsDir: string): Promise<PointResult> {
  const d = job.data;
  if (d.version !== VERSION || d.schema !== SCHEMA) {
    throw new UnrecoverableError(`worker ${me()} runs switch-sim ${VERSION} (config schema ${SCHEMA}); point ${d.point} was enqueued by ${d.version} (schema ${d.schema}): run workers of the sweep's version`);
  }
  const runDir = join(runsDir, d.sweep, d.point);
  mkdirSync(runDir, { recursive: true });
  const configFile = join(runDir, 'point.yaml');
  writeFileSync(configFile, YAML.stringify(d.config));
  const log = join(runDir, 'log.txt');
  const from = checkpointStep(runDir);
  let r = await run(from !== null ? ['train', '--resume', runDir, '--config', configFile] : ['train', '--config', configFile, '--out', runDir], job, log);
  if (r.code === 0 && d.profileSteps) r = await run(['profile', '--config', configFile, '--steps', String(d.profileSteps), '--warmup', '1', '--out', join(runDir, 'profile')], job, log);
  if (r.code !== 0) throw new Error(r.lastError || `exit code ${r.code}`);
  return {
    worker: me(), summary: readJson(join(runDir, 'summary.json')), metrics: readFileSync(join(runDir, 'metrics.jsonl'), 'utf8'),
    profile: readJson(join(runDir, 'profile', 'profile.json')), resumed_from: from,
  };
}

/**
 * `switch-sim worker`: takes points from every sweep queue on the Redis (looking for new queues every
 * second), `concurrency` at a time, until aborted; then finishes what it runs and returns.
 */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  const log = opts.log ?? (() => {});
  const conn = await connectRedis(opts.url);
  const workers = new Map<string, Worker>();
  const connections = [conn];
  const lockMs = opts.lockMs ?? 10_000;
  log(`worker ${me()}: switch-sim ${VERSION}, schema ${SCHEMA}, runs in ${opts.runsDir}`);
  try {
    while (!opts.signal?.aborted) {
      for (const name of await sweepQueues(conn)) {
        if (workers.has(name)) continue;
        const connection = conn.duplicate();
        connections.push(connection);
        const w = new Worker<PointJob, PointResult>(name, (job) => processPoint(job, opts.runsDir), {
          connection, concurrency: opts.concurrency ?? 1, lockDuration: lockMs, stalledInterval: lockMs, maxStalledCount: 3,
        });
        w.on('active', (job) => log(`${name}: ${job.data.point} started`));
        w.on('completed', (job) => log(`${name}: ${job.data.point} done`));
        w.on('failed', (job, e) => log(`${name}: ${job?.data.point} failed: ${e.message}`));
        w.on('error', () => {});
        workers.set(name, w);
        log(`taking points from ${name}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        opts.signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  } finally {
    await Promise.all([...workers.values()].map((w) => w.close())); // waits for the running points
    for (const c of connections) c.disconnect();
  }
}
