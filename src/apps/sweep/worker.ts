import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { missingAs, readJson as readJsonFile } from '../../core/util/fs.js';
import { runPointCommand, signalPoints } from './child.js';
import { runPoint } from './point.js';
import { WorkerFailedError } from './errors.js';
import {
  connectRedis, isConnectionLoss, SCHEMA, sweepQueues, VERSION, type PointJob, type PointResult,
} from './queue.js';

export interface WorkerOptions {
  url: string;
  /** points at once, in all, whatever the number of sweep queues */
  concurrency?: number;
  /** where points run and keep their checkpoints (shared between workers: a handed-over point resumes) */
  runsDir: string;
  log?: (line: string) => void;
  /** Ctrl-C: take no new job, let the running ones finish, then return */
  signal?: AbortSignal;
  /** how long a job's lock lasts without renewal: a worker that died is noticed after about this long */
  lockMs?: number;
  /** how often the worker looks for sweep queues and jobs, ms */
  pollMs?: number;
}

const me = () => `${hostname()}:${process.pid}`;

/** A second Ctrl-C: the running points save a checkpoint and stop (their locks lapse and other workers resume them). */
export const interruptPoints = () => signalPoints('SIGINT');

const readJson = (f: string) => readJsonFile(f, missingAs(null));

/** BullMQ's worker, driven by hand: jobs are fetched by the slot loop below, locks renewed as BullMQ renews them. */
class PointWorker extends Worker<PointJob, PointResult> {
  startLockRenewal(): void {
    this.lockManager.start();
  }
}

/**
 * One point, as a local sweep runs it (runPoint): train, resuming from a checkpoint a previous worker
 * left in the shared runs directory only if that checkpoint is of this job's very config; then the
 * profile of its final checkpoint, if asked.
 */
async function processPoint(job: Job<PointJob>, runsDir: string): Promise<PointResult> {
  const d = job.data;
  if (d.version !== VERSION || d.schema !== SCHEMA) {
    throw new UnrecoverableError(`worker ${me()} runs switch-sim ${VERSION} (config schema ${SCHEMA}); point ` +
      `${d.point} was enqueued by ${d.version} (schema ${d.schema}): run workers of the sweep's version`);
  }
  const runDir = join(runsDir, d.sweep, `${d.point}-${d.key}`);
  const progress = (line: string) => {
    const m = /step (\d+)\/(\d+) loss ([\d.]+) .* (\d+) tok\/s/.exec(line);
    if (m) void job.updateProgress({
      worker: me(), step: +m[1]!, steps: +m[2]!, loss: +m[3]!, tokens_per_s: +m[4]!,
    }).catch(() => {});
  };
  const run = (args: string[], log: string) => runPointCommand(args, log, progress);
  const r = await runPoint({ runDir, config: d.config, profileSteps: d.profileSteps, continueRun: true, run });
  const state = r.state;
  if (r.code !== 0) throw new Error(r.lastError || `exit code ${r.code}`);
  return {
    worker: me(), summary: readJson(join(runDir, 'summary.json')),
    metrics: readFileSync(join(runDir, 'metrics.jsonl'), 'utf8'),
    profile: readJson(join(runDir, 'profile', 'profile.json')),
    resumed_from: state.kind === 'resume' ? state.step : null,
  };
}

/**
 * A sweep queue as a worker sees it: counts on the shared connection; a BullMQ worker (its own connection)
 * only while it has jobs.
 */
interface Watched {
  queue: Queue<PointJob, PointResult>;
  worker?: PointWorker;
  /** points of this queue running here */
  running: number;
}

/**
 * `switch-sim worker`: takes points from every sweep queue on the Redis, at most `concurrency` at
 * once in all, until aborted; then finishes what it runs and returns. Every poll (and whenever a
 * point finishes) it looks for new queues and fills its free slots from the queues in turn. A lost
 * Redis is said once (with its URL) and waited for: the connection reconnects and the polls go on.
 * Any other failure of a poll stops the worker: it takes no new point, lets the running ones finish,
 * and rejects with WorkerFailedError.
 */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  const log = opts.log ?? (() => {});
  const conn: Redis = await connectRedis(opts.url);
  // the connection going down is said once per outage, and its return once: never a line per reconnect attempt
  let lost = false;
  let closing = false;
  const onLost = (why: string) => {
    if (lost || closing) return;
    lost = true;
    log(`lost the Redis at ${opts.url} (${why}); the running points go on, and the worker waits for it to come back`);
  };
  const onBack = () => {
    if (!lost) return;
    lost = false;
    log(`the Redis at ${opts.url} is back`);
  };
  const onClose = () => onLost('connection closed');
  conn.on('close', onClose);
  conn.on('ready', onBack);
  const slots = opts.concurrency ?? 1;
  const lockMs = opts.lockMs ?? 10_000;
  const watched = new Map<string, Watched>();
  const running = new Set<Promise<unknown>>();
  let tokens = 0;
  let turn = 0;
  // one listener for the whole run, never one per poll: an abort ends the current wait
  let wake: (() => void) | undefined;
  const onAbort = () => wake?.();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const open = async (name: string, w: Watched): Promise<PointWorker> => {
    if (w.worker) return w.worker;
    const worker = new PointWorker(name, (job) => processPoint(job, opts.runsDir), {
      connection: conn, autorun: false, lockDuration: lockMs, stalledInterval: lockMs, maxStalledCount: 3,
    });
    worker.on('active', (job) => log(`${name}: ${job.data.point} started`));
    worker.on('completed', (job) => log(`${name}: ${job.data.point} done`));
    worker.on('failed', (job, e) => log(`${name}: ${job?.data.point} failed: ${e.message}`));
    worker.on('error', () => {});
    await worker.startStalledCheckTimer(); // a point whose worker died goes back to waiting once its lock lapses
    worker.startLockRenewal();
    w.worker = worker;
    log(`taking points from ${name}`);
    return worker;
  };
  /** per queue: jobs that wait (or will: delayed retries), and jobs active anywhere */
  const counts = async (w: Watched) => {
    const c = await w.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'waiting-children');
    return {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
      busy: (c.active ?? 0) + (c['waiting-children'] ?? 0),
    };
  };
  /**
   * Every queue with work anywhere has a BullMQ worker here (its stalled check hands back the points of
   * workers that died); one with nothing left gives it back, and that connection with it.
   */
  const watch = async (): Promise<string[]> => {
    const ready: string[] = [];
    for (const [name, w] of watched) {
      const c = await counts(w);
      if (c.waiting > 0) ready.push(name);
      if (c.waiting + c.busy > 0) await open(name, w);
      else if (w.worker && w.running === 0) {
        await w.worker.close();
        w.worker = undefined;
        log(`${name}: nothing left`);
      }
    }
    return ready;
  };
  /** one job from the ready queues in turn; false when none of them had one */
  const take = async (ready: string[]): Promise<boolean> => {
    for (let i = 0; i < ready.length; i++) {
      const name = ready[(turn + i) % ready.length]!;
      const w = watched.get(name)!;
      const worker = await open(name, w);
      const token = `${worker.id}:${tokens++}`;
      const job = await worker.getNextJob(token, { block: false });
      if (!job) continue;
      turn = (turn + i + 1) % ready.length;
      w.running++;
      const done: Promise<unknown> = worker.processJob(job, token, () => false).finally(() => {
        w.running--;
        running.delete(done);
        wake?.();
      });
      running.add(done);
      return true;
    }
    return false;
  };
  log(`worker ${me()}: switch-sim ${VERSION}, schema ${SCHEMA}, up to ${slots} point${slots > 1 ? 's' : ''} at once, ` +
    `runs in ${opts.runsDir}`);
  try {
    while (!opts.signal?.aborted) {
      try {
        for (const name of await sweepQueues(conn)) {
          if (!watched.has(name)) {
            const queue = new Queue<PointJob, PointResult>(name, { connection: conn });
            queue.on('error', () => {});
            watched.set(name, { queue, running: 0 });
          }
        }
        const ready = await watch();
        while (running.size < slots && !opts.signal?.aborted && (await take(ready)));
      } catch (e) {
        const message = (e as Error)?.message ?? String(e);
        if (!isConnectionLoss(conn, e)) {
          if (running.size > 0) log(`stopping: ${message}; finishing the ${running.size} running ` +
            `point${running.size > 1 ? 's' : ''}, taking no new one`);
          throw new WorkerFailedError(`worker ${me()} on ${opts.url}: ${message}`, { cause: e });
        }
        onLost(message); // ioredis reconnects; the next poll tries again
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => resolve(), opts.pollMs ?? 1000);
        wake = () => (clearTimeout(t), resolve());
      });
      wake = undefined;
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.allSettled([...running]); // the running points finish
    for (const w of watched.values()) {
      await w.worker?.close();
      await w.queue.close();
    }
    closing = true;
    conn.off('close', onClose);
    conn.off('ready', onBack);
    conn.disconnect();
  }
}
