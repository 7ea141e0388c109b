/**
 * The two trees of bench/against.ts: the other revision checked out with `git worktree add --detach`
 * into a temporary directory (removed again by `remove()`), its node_modules, one measurement in a fresh
 * child process in either tree, and the names of the machine and the commits.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNNER = 'bench/against-runner.ts';

const git = (root: string, ...args: string[]) =>
  execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** The working tree's commit, marked when tracked files differ from it. */
export function workingCommit(root: string): string {
  const dirty = git(root, 'status', '--porcelain', '--untracked-files=no') !== '';
  return `${git(root, 'rev-parse', '--short', 'HEAD')}${dirty ? '+uncommitted changes' : ''}`;
}

export interface RevTree {
  dir: string;
  /** short commit hash */
  commit: string;
  /** how its node_modules came about */
  modules: 'symlinked' | 'npm ci';
  remove: () => void;
}

/**
 * Checks REV out beside the working tree and gives it node_modules: a symlink to the working tree's when
 * the two package-lock.json are identical, else `npm ci --ignore-scripts` (said through `log`). Copies
 * this tool's runner in (the same timing in both trees). On failure, removes what it made and throws.
 */
export function addRevTree(root: string, rev: string, log: (line: string) => void): RevTree {
  let commit: string;
  try {
    commit = git(root, 'rev-parse', '--short', `${rev}^{commit}`);
  } catch {
    throw new Error(`--against ${rev}: not a commit of the repository in ${root}`);
  }
  const base = mkdtempSync(join(tmpdir(), 'switch-sim-against-'));
  const dir = join(base, 'tree');
  let added = false;
  const remove = () => {
    const modules = join(dir, 'node_modules');
    // never let a recursive delete reach the working tree's node_modules through the symlink
    if (existsSync(dir) && lstatSync(modules, { throwIfNoEntry: false })?.isSymbolicLink()) unlinkSync(modules);
    if (added) {
      try { git(root, 'worktree', 'remove', '--force', dir); } catch { /* pruned below */ }
    }
    rmSync(base, { recursive: true, force: true });
    if (added) git(root, 'worktree', 'prune');
  };
  try {
    git(root, 'worktree', 'add', '--detach', dir, commit);
    added = true;
    let lock = '';
    try { lock = git(root, 'show', `${commit}:package-lock.json`); } catch { /* no lock file there */ }
    const same = lock !== '' && lock === readFileSync(join(root, 'package-lock.json'), 'utf8').trim();
    if (same) {
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    } else {
      log(`${commit}'s package-lock.json differs from the working tree's: running npm ci --ignore-scripts in ${dir}`);
      const npm = ['ci', '--ignore-scripts', '--no-audit', '--no-fund'];
      execFileSync('npm', npm, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    }
    mkdirSync(join(dir, 'bench'), { recursive: true });
    copyFileSync(join(root, RUNNER), join(dir, RUNNER));
    return { dir, commit, modules: same ? 'symlinked' : 'npm ci', remove };
  } catch (e) {
    remove();
    throw e;
  }
}

export interface Measurement {
  tokens_per_s: number;
  ms_per_step: number;
  counted_steps: number;
  tokens_per_step: number;
}

/** The child processes measuring now, so that a signal handler can end them. */
export const running = new Set<ChildProcess>();

/** One run of the runner in `tree` (its own src/), in a fresh process; rejects with its stderr's tail. */
export function measure(
  tree: string, args: { config: string; steps: number; warmup: number; sets: string[]; batchDivisor?: number;
    checkpoint?: string },
): Promise<Measurement> {
  const argv = ['--import', 'tsx', RUNNER, '--config', args.config, '--steps', String(args.steps),
    '--warmup', String(args.warmup), ...(args.batchDivisor ? ['--batch-divisor', String(args.batchDivisor)] : []),
    ...(args.checkpoint ? ['--checkpoint', args.checkpoint] : []),
    ...args.sets.flatMap((s) => ['--set', s])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: tree, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      running.delete(child);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) return resolve(JSON.parse(line) as Measurement);
      const why = signal ? `signal ${signal}` : `exit code ${code}`;
      const tail = err.trim().split('\n').slice(-15).join('\n');
      reject(new Error(`run in ${tree} failed (${why}): ${argv.slice(2).join(' ')}\n${tail}`));
    });
  });
}

/**
 * `switch-sim train` of `config` with `sets` in the working tree `root`, into `out`, in a child process that a
 * signal handler can end (it is in `running`); rejects with its stderr's tail unless it exits 0.
 */
export function trainRun(root: string, config: string, sets: string[], out: string): Promise<void> {
  const argv = ['--import', 'tsx', 'src/cli/main.ts', 'train', '--config', config, '--out', out,
    ...sets.flatMap((s) => ['--set', s])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      running.delete(child);
      if (code === 0) return resolve();
      const tail = err.trim().split('\n').slice(-15).join('\n');
      reject(new Error(`training ${config} failed (${signal ? `signal ${signal}` : `exit code ${code}`})\n${tail}`));
    });
  });
}

/** "Intel(R) Xeon(R) ..., 2 cores, load 8.1 7.9 6.0" (the load at the end of the benchmark). */
export function machine(): string {
  const cores = cpus();
  let model = cores[0]?.model ?? '';
  if (!model) {
    try {
      model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
    } catch { model = 'unknown CPU'; }
  }
  return `${model.trim()}, ${cores.length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`;
}
