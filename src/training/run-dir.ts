import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import type { Config } from '../core/config/defaults.js';
import { ConfigError } from '../core/config/errors.js';
import { configHash } from '../core/config/hash.js';
import { validateConfig } from '../core/config/load.js';
import { directoryPathProblem, readJson, writeFileAtomic } from '../core/util/fs.js';
import { timestampedRunDir } from '../core/util/run-name.js';
import { CheckpointError, type CheckpointData } from '../runtime/coordinator/restore.js';
import { checkpointSteps, saveCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import { MetricsWriter, type PastRecords } from './metrics.js';
import { RunLock } from './run-lock.js';
import { RunTotals, type TimeKind, type TotalsSummary } from './run-totals.js';

/** What a run writes in its directory: any of these there means the directory holds a run. */
const RUN_FILES = ['run.json', 'config.yaml', 'metrics.jsonl', 'summary.json', 'checkpoints'];

/** DIR/run.json: the run the directory holds. Every checkpoint of the run carries its id. */
interface RunIdentity {
  id: string;
  created: string;
  /** a run started from another run's checkpoint (--resume into another directory) */
  from?: { checkpoint: string; run: string | null; step: number };
}

/**
 * How a run uses its directory:
 *   new       a new run, in a directory that holds none (or whose run --force deleted)
 *   continue  --resume in the checkpoint's own run directory: the same run goes on
 *   branch    --resume into another directory: a new run that starts from the checkpoint
 */
export type RunStart = 'new' | 'continue' | 'branch';

export interface RunDirOptions {
  /** --out; by default the checkpoint's own run directory on --resume, else runs/<name>-<time> */
  outDir?: string;
  name: string;
  checkpoint?: LoadedCheckpoint;
  /** delete a run already in the directory (of a new run or a branch) first */
  force?: boolean;
  /** train.steps of the config about to run */
  steps: number;
  log?: (line: string) => void;
}

/** The run directory a checkpoint directory DIR/checkpoints/step-N belongs to, if it is in one. */
const homeOf = (checkpointDir: string) =>
  (basename(dirname(checkpointDir)) === 'checkpoints' ? dirname(dirname(checkpointDir)) : undefined);
const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
const heldFiles = (dir: string) => RUN_FILES.filter((f) => existsSync(join(dir, f)));

/**
 * A run's directory, the one owner of what is in it: it creates it, refuses to mix two runs in it,
 * replaces the run there on --force, continues the run there on --resume (only that run: the checkpoint
 * must be the directory's own), and keeps the run's cumulative figures across resumes (RunTotals),
 * saving them in every checkpoint and writing summary.json from them.
 */
export class RunDir {
  readonly metrics: MetricsWriter;
  private id = '';
  private totals: RunTotals | undefined;
  private lock: RunLock | undefined;

  /** the newest checkpoint step in the directory when `plan` looked (a continuation checks it did not move on) */
  private readonly newest: number | undefined;

  private constructor(readonly path: string, readonly start: RunStart, readonly complete: boolean,
    private readonly opts: RunDirOptions) {
    this.newest = newestStep(path);
    this.metrics = new MetricsWriter(path);
  }

  /**
   * Where the run writes and whether it may, before any input is used and without touching a file:
   * a new run (or a branch) into a directory that holds a run is refused unless `force`; a resumed
   * checkpoint must belong to the run of the directory it continues. `complete`: the run there has
   * already trained all its steps and written summary.json, so there is nothing to do.
   */
  static plan(opts: RunDirOptions): RunDir {
    const ck = opts.checkpoint;
    const home = ck ? homeOf(ck.dir) : undefined;
    const path = opts.outDir ?? home ?? timestampedRunDir(opts.name);
    const problem = directoryPathProblem(path);
    if (problem) throw new ConfigError(`--out must be a directory path (got ${JSON.stringify(path)}, which ${problem})`);
    const start: RunStart = !ck ? 'new' : home !== undefined && real(path) === real(home) ? 'continue' : 'branch';
    const held = heldFiles(path);
    if (start !== 'continue' && held.length > 0 && !opts.force) {
      const next = start === 'new' ? `continue it with --resume ${path}` : 'choose another --out';
      throw new ConfigError(`run directory ${path} already holds a run (${held.join(', ')}): a new run never `
        + `writes into another run's `
        + `directory; ${next}, or pass --force to delete that run and start this one there`);
    }
    if (start === 'continue') {
      if (opts.force) {
        throw new ConfigError(`--force would delete the run in ${path} that --resume continues: drop --force, or `
          + `--resume into another --out`);
      }
      checkBelongs(path, ck!);
    }
    const summary = readJson<{ steps?: unknown }, undefined>(join(path, 'summary.json'), () => undefined);
    const complete = start === 'continue' && ck!.step >= opts.steps && summary?.steps === ck!.step;
    if (ck && ck.step > opts.steps && !complete) {
      throw new ConfigError(`train.steps must be at least the step of the checkpoint it continues (${ck.step}, `
        + `${ck.dir}) (got ${opts.steps})`);
    }
    return new RunDir(path, start, complete, opts);
  }

  /**
   * Makes the directory the run's, once every input has been validated: a new run or a branch deletes
   * a run there (--force, checked by plan) and records its identity; a continued run keeps its identity,
   * drops the metrics and checkpoints logged after the resumed step (an abandoned continuation) and its
   * summary.json, and returns the evaluations kept. Either writes the config it runs with to config.yaml.
   * The run holds the directory's lock (run-lock.ts) until `close`: a run that another one started into
   * the same directory meanwhile, or a second --resume of it, is refused (ConfigError) before it writes.
   */
  open(config: Config): PastRecords {
    const ck = this.opts.checkpoint;
    const log = this.opts.log ?? (() => {});
    let past: PastRecords = { valCes: [], lastEval: undefined };
    mkdirSync(this.path, { recursive: true });
    this.lock = RunLock.take(this.path);
    if (this.start !== 'continue') {
      const held = heldFiles(this.path);
      if (held.length > 0 && !this.opts.force) {
        this.close();
        throw new ConfigError(`run directory ${this.path} was taken by another run while this one started `
          + `(${held.join(', ')}): a new run never writes into another run's directory; choose another --out`);
      }
      for (const f of held) rmSync(join(this.path, f), { recursive: true, force: true });
      if (held.length > 0) log(`--force: deleted the run in ${this.path} (${held.join(', ')})`);
      this.id = randomUUID();
      const from = ck ? { from: { checkpoint: ck.dir, run: ck.run?.id ?? null, step: ck.step } } : {};
      this.writeIdentity({ id: this.id, created: new Date().toISOString(), ...from });
    } else {
      const identity = readIdentity(this.path);
      this.id = identity?.id ?? ck!.run?.id ?? randomUUID();
      // a run directory from before run ids
      if (!identity) this.writeIdentity({ id: this.id, created: new Date().toISOString() });
      const now = newestStep(this.path);
      if (now !== this.newest) {
        this.close();
        throw new ConfigError(`run directory ${this.path} moved on while this run started (its newest checkpoint is `
          + `step ${now}, was step ${this.newest}): another process continued it; --resume it again to go on from there`);
      }
      past = this.metrics.truncateAfter(ck!.step);
      // the summary is of a run that ended at some step: the one continuing here writes its own
      rmSync(join(this.path, 'summary.json'), { force: true });
      const later = checkpointSteps(join(this.path, 'checkpoints')).filter((s) => s.step > ck!.step).reverse();
      for (const s of later) rmSync(s.dir, { recursive: true, force: true });
      const names = later.map((s) => basename(s.dir)).join(', ');
      if (later.length > 0)
        log(`dropped the checkpoints after step ${ck!.step} (${names}): the run continues from step ${ck!.step}`);
    }
    writeFileAtomic(join(this.path, 'config.yaml'), YAML.stringify(config));
    this.totals = ck ? RunTotals.resume(ck.run, config.train.log_every) : RunTotals.start(config.train.log_every);
    if (ck && !this.totals.known) {
      log(`note: checkpoint ${ck.dir} does not record the run's time and tokens so far (made `
        + `before they were recorded): `
        + 'summary.json gives them as null');
    }
    return past;
  }

  /** Gives the directory back (the run ended, whichever way). */
  close(): void {
    this.lock?.release();
    this.lock = undefined;
  }

  /** Runs `f`, its time counted in the run's `kind` (evaluation, checkpoint writing). */
  time<R>(kind: TimeKind, f: () => Promise<R>): Promise<R> {
    return this.opened().time(kind, f);
  }

  /** One training step: its time, tokens and cross-entropy, added to the run's. */
  addStep(ms: number, tokens: number, ce: number): void {
    this.opened().step(ms, tokens, ce);
  }

  /** Saves checkpoints/step-N, carrying the run's id and its figures up to this moment. */
  saveCheckpoint(data: CheckpointData): string {
    return saveCheckpoint(join(this.path, 'checkpoints'), data, () => this.opened().record(this.id));
  }

  /** The whole run's times, tokens/s and train_ce (null where unknown), for summary.json. */
  totalsSummary(): TotalsSummary & { note?: string } {
    const t = this.opened();
    const note = 'times and tokens_per_s unknown: part of this run was trained by a version that did not record them';
    return { ...t.summary(), ...(t.known ? {} : { note }) };
  }

  /** summary.json of a complete run, as it stands (plan found it). */
  readSummary(): Record<string, unknown> {
    return readJson(join(this.path, 'summary.json'));
  }

  private opened(): RunTotals {
    if (!this.totals) throw new Error('RunDir.open must come first');
    return this.totals;
  }

  private writeIdentity(identity: RunIdentity): void {
    writeFileAtomic(join(this.path, 'run.json'), `${JSON.stringify(identity, null, 2)}\n`);
  }
}

const newestStep = (dir: string) => checkpointSteps(join(dir, 'checkpoints'))[0]?.step;

function readIdentity(dir: string): RunIdentity | undefined {
  const r = readJson<RunIdentity, undefined>(join(dir, 'run.json'), () => undefined);
  return typeof r?.id === 'string' ? r : undefined;
}

/**
 * Refuses a checkpoint that is not of the run in `dir`: by the run id both carry, or, for a directory
 * or checkpoint from before run ids, by the config (config.yaml, the run's, against the checkpoint's).
 */
function checkBelongs(dir: string, ck: LoadedCheckpoint): void {
  const refuse = (why: string) =>
    new CheckpointError(`checkpoint ${ck.dir} is not of the run in ${dir} (${why}): --resume continues only `
      + `a directory's own run; to start from that checkpoint anyway, --resume ${ck.dir} --out another directory`);
  const identity = readIdentity(dir);
  if (identity && ck.run) {
    if (ck.run.id !== identity.id) throw refuse(`run ${ck.run.id}, the directory's is ${identity.id}`);
    return;
  }
  const file = join(dir, 'config.yaml');
  if (!existsSync(file)) return;
  let runConfig: Config;
  try {
    runConfig = validateConfig(YAML.parse(readFileSync(file, 'utf8')));
  } catch {
    return; // a config.yaml this version cannot read says nothing either way
  }
  const [theirs, ours] = [configHash(ck.config), configHash(runConfig)];
  if (theirs !== ours) throw refuse(`config ${theirs}, the directory's config.yaml is ${ours}`);
}
