import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { configParamCounts } from '../../core/model/params.js';
import { configHash } from '../../core/config/hash.js';
import { timestampedRunDir } from '../../core/util/run-name.js';
import { runPointCommand, runPointInProcess, signalPoints, type PointMain } from './child.js';
import { runPoint } from './point.js';
import { loadSweep, type Sweep, type SweepPoint } from './file.js';
import { collectResult, readResults, writeResults, type ResultRow } from './results.js';

export interface SweepOptions {
  file: string;
  /** --set key=value for every point, after the file's `set` */
  sets?: string[];
  /** --seeds: these seeds instead of the file's */
  seeds?: number[];
  outDir?: string;
  /**
   * skip points already finished (status ok, same config) in DIR/results.jsonl; continue interrupted ones
   * from their checkpoint; rerun failed ones
   */
  resume?: boolean;
  /** points run at once, each a child process */
  jobs?: number;
  /** profiled steps per point when the sweep records `profile` */
  profileSteps?: number;
  /** called as points finish */
  onPoint?: (row: ResultRow, done: number, total: number) => void;
  /**
   * aborted (Ctrl-C): no new point starts, running ones get one SIGINT (they save a checkpoint) and are not
   * recorded
   */
  signal?: AbortSignal;
  /**
   * run each point's commands in this process through this CLI entry, one at a time (tests of whole sweep
   * files), not as child processes
   */
  inProcess?: PointMain;
}

export interface SweepResult {
  dir: string;
  sweep: Sweep;
  rows: ResultRow[];
  skipped: number;
  interrupted: boolean;
}

/**
 * `switch-sim sweep`: every point of a sweep file, each in its own child process (its own devices
 * and run directory runs/<point>/), `jobs` at a time; results.jsonl and results.csv rewritten as
 * points finish; a failing point is recorded with its error and the sweep goes on.
 */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const sweep = loadSweep(opts.file, opts.sets, opts.seeds); // every point validated before anything runs
  const dir = opts.outDir ?? timestampedRunDir(`sweep-${sweep.name}`);
  mkdirSync(join(dir, 'runs'), { recursive: true });
  writeFileSync(join(dir, 'sweep.yaml'), YAML.stringify(sweep.resolved));
  // a finished row is reused only for the very config the point has now (same hash): never another run's result
  const previous = opts.resume ? readResults(dir, sweep.keys) : new Map<string, ResultRow>();
  const results = new Map<string, ResultRow>(sweep.points.flatMap((p) => {
    const r = previous.get(p.name);
    return r && r.status === 'ok' && r.config_hash === configHash(p.config) ? [[p.name, r] as const] : [];
  }));
  const todo = sweep.points.filter((p) => !results.has(p.name));
  const skipped = sweep.points.length - todo.length;
  const ordered = () => sweep.points.map((p) => results.get(p.name)).filter((r): r is ResultRow => r !== undefined);
  let interrupted = opts.signal?.aborted === true;
  const onAbort = () => {
    interrupted = true;
    signalPoints('SIGINT'); // once: each point finishes its step, saves a checkpoint and exits 130
  };
  opts.signal?.addEventListener('abort', onAbort);
  const profileSteps = sweep.record.profile ? opts.profileSteps ?? 3 : null;
  const run = (
    args: string[], log: string,
  ) => (opts.inProcess ? runPointInProcess(opts.inProcess, args, log) : runPointCommand(args, log));
  const runOne = async (p: SweepPoint): Promise<void> => {
    const runDir = join(dir, 'runs', p.name);
    const t0 = performance.now();
    const r = await runPoint({ runDir, config: p.config, profileSteps, continueRun: opts.resume === true, run });
    if (interrupted) return; // neither done nor failed: --resume continues it from its checkpoint
    const row = await collectResult(
      p, runDir, r.code === 0 ? 'ok' : 'failed', r.code === 0 ? null : r.lastError || `exit code ${r.code}`,
      (performance.now() - t0) / 1000, sweep.simulate,
    );
    results.set(p.name, row);
    writeResults(dir, sweep.keys, ordered());
    opts.onPoint?.(row, results.size, sweep.points.length);
  };
  try {
    const queue = [...todo];
    const worker = async () => {
      for (let p = queue.shift(); p && !interrupted; p = queue.shift()) await runOne(p);
    };
    await Promise.all(Array.from(
      { length: opts.inProcess ? 1 : Math.max(1, Math.min(opts.jobs ?? 1, todo.length)) }, worker,
    ));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  writeResults(dir, sweep.keys, ordered());
  const { writeReport } = await import('./report.js'); // vega, only once the results are in
  await writeReport(dir);
  return { dir, sweep, rows: ordered(), skipped, interrupted };
}

/** The points of a sweep with their parameter counts, without running anything (--dry-run). */
export function describePoints(sweep: Sweep, vocabOf: (p: SweepPoint) => number): string[] {
  return sweep.points.map((p) => {
    const c = configParamCounts(p.config, vocabOf(p));
    return `${p.name.padEnd(40)} params ${c.total.toLocaleString('en-US')} ` +
      `(${c.activePerToken.toLocaleString('en-US')} active per token)`;
  });
}

