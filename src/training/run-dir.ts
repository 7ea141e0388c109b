import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import tf from '../core/util/tfjs.cjs';
import type { Config } from '../core/config/defaults.js';
import { configHash } from '../core/config/hash.js';

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '');

/**
 * Where a run writes: `--out` if given; on `--resume` of a run's checkpoint, that run's directory
 * (its metrics continue); otherwise a new runs/<name>-<timestamp>.
 */
export function runDirFor(opts: { outDir?: string; name: string; checkpointDir?: string }): string {
  if (opts.outDir) return opts.outDir;
  if (opts.checkpointDir && basename(dirname(opts.checkpointDir)) === 'checkpoints') return dirname(dirname(opts.checkpointDir));
  return join('runs', `${opts.name}-${stamp()}`);
}

export interface PastRecords {
  /** validation losses already logged at or before the resumed step */
  valCes: number[];
}

/**
 * Drops the records of metrics.jsonl logged after `step` (a crash after the last checkpoint leaves
 * some; the resumed run logs those steps again), rewriting the file atomically.
 */
export function truncateMetrics(file: string, step: number): PastRecords {
  if (!existsSync(file)) return { valCes: [] };
  const kept: string[] = [];
  const valCes: number[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let rec: { step?: number; val_ce?: number };
    try {
      rec = JSON.parse(line);
    } catch {
      continue; // a line cut off by a crash
    }
    if (typeof rec.step !== 'number' || rec.step > step) continue;
    kept.push(line);
    if (typeof rec.val_ce === 'number') valCes.push(rec.val_ce);
  }
  writeFileSync(`${file}.tmp`, kept.map((l) => `${l}\n`).join(''));
  renameSync(`${file}.tmp`, file);
  return { valCes };
}

export { configHash };

const ROOT = new URL('../..', import.meta.url).pathname;

export interface Provenance {
  switch_sim_version: string;
  tfjs_version: string;
  /** HEAD of switch-sim's own checkout, or null (not a checkout, or a folder inside another repository) */
  git_commit: string | null;
  /** sha256 (16 hex digits) of the resolved config with sorted keys */
  config_hash: string;
}

/**
 * The commit of the switch-sim checkout at `root`, or null: null outside a git checkout, and null when
 * `root` is merely inside some other repository (switch-sim installed into another project's folder),
 * whose commit says nothing about switch-sim.
 */
export function ownCommit(root: string = ROOT): string | null {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    if (realpathSync(git('rev-parse', '--show-toplevel')) !== realpathSync(root)) return null;
    return git('rev-parse', 'HEAD') || null;
  } catch {
    return null; // not a git checkout, or no git
  }
}

/** What produced a run: switch-sim's and tfjs's versions, the git commit when there is one, the config's hash. */
export function provenance(config: Config): Provenance {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return { switch_sim_version: pkg.version, tfjs_version: tf.version_core, git_commit: ownCommit(), config_hash: configHash(config) };
}
