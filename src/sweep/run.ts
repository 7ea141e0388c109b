import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { configParamCounts } from '../model/params.js';
import { loadSweep, type Sweep, type SweepPoint } from './file.js';
import { writeReport } from './report.js';
import { collectResult, readResults, writeResults, type ResultRow } from './results.js';

const BIN = new URL('../../bin/switch-sim.js', import.meta.url).pathname;

export interface SweepOptions {
  file: string;
  /** --set key=value for every point, after the file's `set` */
  sets?: string[];
  outDir?: string;
  /** skip points already finished (status ok) in DIR/results.jsonl; rerun failed ones */
  resume?: boolean;
  /** points run at once, each a child process */
  jobs?: number;
  /** profiled steps per point when the sweep records `profile` */
  profileSteps?: number;
  /** called as points finish */
  onPoint?: (row: ResultRow, done: number, total: number) => void;
  /** aborted (Ctrl-C): no new point starts, running ones are interrupted (they save a checkpoint) and not recorded */
  signal?: AbortSignal;
}

export interface SweepResult {
  dir: string;
  sweep: Sweep;
  rows: ResultRow[];
  skipped: number;
  interrupted: boolean;
}

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '');

/** Runs a command of this CLI as a child process, its output to `log`; resolves with the exit code and stderr's last line. */
function child(args: string[], log: string, running: Set<ReturnType<typeof spawn>>): Promise<{ code: number; lastError: string }> {
  return new Promise((resolve) => {
    const out = createWriteStream(log, { flags: 'a' });
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(p);
    let err = '';
    p.stdout!.pipe(out, { end: false });
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      out.write(d);
    });
    p.on('close', (code, signal) => {
      running.delete(p);
      out.end();
      const lines = err.trim().split('\n').filter((l) => l.trim());
      resolve({ code: code ?? (signal ? 128 : 1), lastError: lines.at(-1) ?? (signal ? `killed by ${signal}` : '') });
    });
  });
}

/**
 * `switch-sim sweep`: every point of a sweep file, each in its own child process (its own devices
 * and run directory runs/<point>/), `jobs` at a time; results.jsonl and results.csv rewritten as
 * points finish; a failing point is recorded with its error and the sweep goes on.
 */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const sweep = loadSweep(opts.file, opts.sets); // every point validated before anything runs
  const dir = opts.outDir ?? join('runs', `sweep-${sweep.name}-${stamp()}`);
  mkdirSync(join(dir, 'runs'), { recursive: true });
  writeFileSync(join(dir, 'sweep.yaml'), YAML.stringify(sweep.resolved));
  const previous = opts.resume ? readResults(dir, sweep.keys) : new Map<string, ResultRow>();
  const results = new Map<string, ResultRow>([...previous].filter(([, r]) => r.status === 'ok'));
  const todo = sweep.points.filter((p) => !results.has(p.name));
  const skipped = sweep.points.length - todo.length;
  const ordered = () => sweep.points.map((p) => results.get(p.name)).filter((r): r is ResultRow => r !== undefined);
  const running = new Set<ReturnType<typeof spawn>>();
  let interrupted = opts.signal?.aborted === true;
  const onAbort = () => {
    interrupted = true;
    for (const p of running) p.kill('SIGINT'); // the trainer saves a checkpoint and exits 130
  };
  opts.signal?.addEventListener('abort', onAbort);
  const runPoint = async (p: SweepPoint): Promise<void> => {
    const runDir = join(dir, 'runs', p.name);
    rmSync(runDir, { recursive: true, force: true }); // a failed point reruns from scratch
    mkdirSync(runDir, { recursive: true });
    const configFile = join(runDir, 'point.yaml');
    writeFileSync(configFile, YAML.stringify(p.config));
    const log = join(runDir, 'log.txt');
    const t0 = performance.now();
    let r = await child(['train', '--config', configFile, '--out', runDir], log, running);
    if (r.code === 0 && sweep.record.profile) {
      r = await child(['profile', '--config', configFile, '--steps', String(opts.profileSteps ?? 3), '--warmup', '1', '--out', join(runDir, 'profile')], log, running);
    }
    if (interrupted) return; // neither done nor failed: --resume runs it again
    const row = collectResult(p, runDir, r.code === 0 ? 'ok' : 'failed', r.code === 0 ? null : r.lastError || `exit code ${r.code}`, (performance.now() - t0) / 1000);
    results.set(p.name, row);
    writeResults(dir, sweep.keys, ordered());
    opts.onPoint?.(row, results.size, sweep.points.length);
  };
  try {
    const queue = [...todo];
    const worker = async () => {
      for (let p = queue.shift(); p && !interrupted; p = queue.shift()) await runPoint(p);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs ?? 1, todo.length)) }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  writeResults(dir, sweep.keys, ordered());
  await writeReport(dir);
  return { dir, sweep, rows: ordered(), skipped, interrupted };
}

/** The points of a sweep with their parameter counts, without running anything (--dry-run). */
export function describePoints(sweep: Sweep, vocabOf: (p: SweepPoint) => number): string[] {
  return sweep.points.map((p) => {
    const c = configParamCounts(p.config, vocabOf(p));
    return `${p.name.padEnd(40)} params ${c.total.toLocaleString('en-US')} (${c.activePerToken.toLocaleString('en-US')} active per token)`;
  });
}

