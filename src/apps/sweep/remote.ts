import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import YAML from 'yaml';
import { configHash } from '../../core/config/hash.js';
import { timestampedRunDir } from '../../core/util/run-name.js';
import { QueueLostError } from './errors.js';
import { loadSweep, type SweepPoint } from './file.js';
import { connectRedis, jobId, pointKey, queueName, SCHEMA, VERSION, type PointJob, type PointResult } from './queue.js';
import { collectResult, readResults, writeResults, type ResultRow } from './results.js';
import type { SweepOptions, SweepResult } from './run.js';

/** A queued sweep's options: a local sweep's, less what the workers decide (points at once, how they run). */
export interface RemoteSweepOptions extends Omit<SweepOptions, 'jobs' | 'inProcess'> {
  /** redis://HOST:PORT[/DB] */
  queue: string;
  /** tries per point before it is recorded as failed */
  attempts?: number;
  /** a worker's progress on a point (step, loss, tokens/s) */
  onProgress?: (
    point: string, progress: { worker?: string; step?: number; steps?: number; loss?: number; tokens_per_s?: number },
  ) => void;
  /** how often the sweep looks at its jobs, ms */
  pollMs?: number;
  /** how long the Redis may be unreachable before the sweep gives up (exit 1; the same command resumes), ms */
  lostAfterMs?: number;
}

/** A finished job's result, written where a local point writes it, then read back as a results row. */
function writePoint(dir: string, p: SweepPoint, job: Job<PointJob, PointResult>, cluster?: string): Promise<ResultRow> {
  const runDir = join(dir, 'runs', p.name);
  mkdirSync(join(runDir, 'profile'), { recursive: true });
  const r = job.returnvalue;
  writeFileSync(join(runDir, 'summary.json'), `${JSON.stringify(r.summary, null, 1)}\n`);
  writeFileSync(join(runDir, 'metrics.jsonl'), r.metrics);
  if (r.profile) writeFileSync(join(runDir, 'profile', 'profile.json'), JSON.stringify(r.profile));
  writeFileSync(
    join(runDir, 'worker.json'),
    `${JSON.stringify({ worker: r.worker, resumed_from: r.resumed_from, attempts: job.attemptsMade, job: job.id })}\n`,
  );
  return collectResult(p, runDir, 'ok', null, ((job.finishedOn ?? 0) - (job.processedOn ?? 0)) / 1000, cluster);
}

/**
 * `switch-sim sweep FILE --queue URL`: every point (with `resume`, every point not finished in the
 * sweep directory) becomes a BullMQ job whose id is
 * the point's name and its config's hash (pointKey): the same config is the same job (a rerun adds
 * nothing twice and collects its result), another config is another job. Then the sweep follows the
 * jobs and collects their results into results.jsonl, results.csv and report.html as a local sweep
 * does. Ctrl-C stops following (the jobs stay queued; the same command collects them later). A Redis
 * that stays unreachable for `lostAfterMs` ends the sweep with QueueLostError.
 */
export async function runRemoteSweep(opts: RemoteSweepOptions): Promise<SweepResult> {
  const sweep = loadSweep(opts.file, opts.sets, opts.seeds);
  const conn = await connectRedis(opts.queue, { failFast: true });
  const dir = opts.outDir ?? timestampedRunDir(`sweep-${sweep.name}`);
  mkdirSync(join(dir, 'runs'), { recursive: true });
  writeFileSync(join(dir, 'sweep.yaml'), YAML.stringify(sweep.resolved));
  const profileSteps = sweep.record.profile ? opts.profileSteps ?? 3 : null;
  const ids = new Map(sweep.points.map((p) => [p.name, jobId(p.name, pointKey(p.config, profileSteps))]));
  // --resume: the rows already in --out (ok, same config) are kept; otherwise every point's job is followed anew
  // (a finished job of the same config is collected again, not rerun)
  const previous = opts.resume ? readResults(dir, sweep.keys) : new Map<string, ResultRow>();
  const results = new Map(sweep.points.flatMap((p) => {
    const r = previous.get(p.name);
    return r && r.status === 'ok' && r.config_hash === configHash(p.config) ? [[p.name, r] as const] : [];
  }));
  const todo = sweep.points.filter((p) => !results.has(p.name));
  const skipped = sweep.points.length - todo.length;
  const ordered = () => sweep.points.map((p) => results.get(p.name)).filter((r): r is ResultRow => r !== undefined);
  const queue = new Queue<PointJob, PointResult>(queueName(sweep.name), { connection: conn });
  queue.on('error', () => {});
  const attempts = opts.attempts ?? 2;
  const lostAfter = opts.lostAfterMs ?? 5000;
  let lastOk = Date.now();
  /** one Redis round of the sweep; while the Redis is away it is retried, until lostAfter passes */
  const redis = async <T>(f: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        const r = await f();
        lastOk = Date.now();
        return r;
      } catch (e) {
        if (Date.now() - lastOk > lostAfter) {
          throw new QueueLostError(`lost the Redis at ${opts.queue} (${(e as Error).message}); the points stay ` +
            `queued: run the same command again once it is back`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  try {
    for (const p of todo) {
      const id = ids.get(p.name)!;
      await redis(async () => {
        const old = await queue.getJob(id);
        if (old && (await old.getState()) === 'failed') await old.remove(); // a rerun retries failed points
        await queue.add(p.name, {
          sweep: sweep.name, point: p.name, key: pointKey(p.config, profileSteps), seed: p.seed, vary: p.vary,
          config: p.config, profileSteps, version: VERSION, schema: SCHEMA,
        },
          { jobId: id, attempts, removeOnComplete: false, removeOnFail: false });
      });
    }
    const pending = new Set(todo.map((p) => p.name));
    const seen = new Map<string, string>();
    while (pending.size > 0 && !opts.signal?.aborted) {
      for (const name of [...pending]) {
        const found = await redis(async () => {
          // the state first, then the job: a job read before it completes has no result yet, even if its
          // state (read after) says completed
          const state = await queue.getJobState(ids.get(name)!);
          const job = state === 'unknown' ? undefined : await queue.getJob(ids.get(name)!);
          return job ? { job, state } : undefined;
        });
        if (!found) continue;
        const { job, state } = found;
        const p = sweep.points.find((x) => x.name === name)!;
        if (state === 'completed' || state === 'failed') { // 'failed' is final: a job with attempts left waits again instead
          const row = state === 'completed' ? await writePoint(dir, p, job, sweep.simulate) : await collectResult(
            p, join(dir, 'runs', p.name), 'failed', job.failedReason ?? 'failed', 0,
          );
          results.set(name, row);
          pending.delete(name);
          writeResults(dir, sweep.keys, ordered());
          opts.onPoint?.(row, results.size, sweep.points.length);
        } else if (state === 'active' && job.progress && typeof job.progress === 'object') {
          const key = JSON.stringify(job.progress);
          if (seen.get(name) !== key) opts.onProgress?.(name, job.progress as Record<string, number>);
          seen.set(name, key);
        }
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
    writeResults(dir, sweep.keys, ordered());
    const { writeReport } = await import('./report.js'); // vega, only once the results are in
    await writeReport(dir);
    return { dir, sweep, rows: ordered(), skipped, interrupted: pending.size > 0 };
  } finally {
    await queue.close().catch(() => {});
    conn.disconnect();
  }
}
