import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingAs, readJson as readJsonFile, writeFileAtomic } from '../../core/util/fs.js';
import { configHash } from '../../core/config/hash.js';
import { show } from '../../core/config/errors.js';
import { SweepDirError } from './errors.js';
import type { SweepPoint } from './file.js';

/** One row of results.jsonl / results.csv: a point and seed. */
export interface ResultRow {
  point: string;
  /** the swept keys, named as in the config */
  vary: Record<string, unknown>;
  seed: number;
  params_total: number | null;
  params_active_per_token: number | null;
  train_ce: number | null;
  val_ce: number | null;
  tokens_per_s: number | null;
  /** training time over steps, the whole run's; null when its time is unknown (run_note says why) */
  step_ms: number | null;
  /** from the point's profile (record: profile), else null */
  dispatch_overhead_fraction: number | null;
  /** mean over Switch layers, last logged training step */
  drop_fraction: number | null;
  /**
   * the busiest expert's kept token-choices (all k, after capacity drops) over the mean, mean over Switch
   * layers, last logged training step (metrics.jsonl's load_max_over_mean_first is the first-choice figure
   * before drops)
   */
  load_max_over_mean: number | null;
  /** the run projected onto the sweep's `simulate` cluster from its own routing (null without one) */
  projected_step_ms: number | null;
  projected_tokens_per_s: number | null;
  /** why the run could not be projected onto the sweep's `simulate` cluster (null when it was, or without one) */
  projection_error: string | null;
  /** what to know about the projection (this machine: a layout or device count its calibration never saw), else null */
  projection_note: string | null;
  /** summary.json's note: why some of the run's figures (its times: tokens_per_s, step_ms) are unknown, else null */
  run_note: string | null;
  wall_s: number;
  status: 'ok' | 'failed';
  error: string | null;
  /** the point's resolved config (seed included), hashed: a row is reused only for the same config */
  config_hash: string;
}

export const FIXED_COLUMNS = ['seed', 'params_total', 'params_active_per_token', 'train_ce', 'val_ce', 'tokens_per_s', 'step_ms',
  'dispatch_overhead_fraction', 'drop_fraction', 'load_max_over_mean', 'projected_step_ms', 'projected_tokens_per_s',
  'projection_error',
  'projection_note', 'run_note', 'wall_s', 'status', 'error', 'config_hash'] as const;

/** The columns that are measurements of a run (what summary.csv estimates over seeds). */
export const METRIC_COLUMNS = [
  'train_ce', 'val_ce', 'tokens_per_s', 'step_ms', 'dispatch_overhead_fraction', 'drop_fraction', 'load_max_over_mean',
  'projected_step_ms', 'projected_tokens_per_s',
] as const;
export type MetricColumn = (typeof METRIC_COLUMNS)[number];

const readJson = (file: string) => readJsonFile(file, missingAs(undefined));

/** Training records of a run's metrics.jsonl (steps with `loss`), in order. */
export function trainingRecords(runDir: string): {
  step: number; loss: number; ce: number;
  layers?: { drop_fraction: number; load_max_over_mean: number; tokens_per_expert: number[] }[];
}[] {
  const file = join(runDir, 'metrics.jsonl');
  if (!existsSync(file)) return [];
  return jsonLines(file).filter((r) => typeof r.loss === 'number') as ReturnType<typeof trainingRecords>;
}

/** Evaluations of a run's metrics.jsonl (steps with `val_ce`), in order. */
export function evalRecords(runDir: string): { step: number; val_ce: number }[] {
  const file = join(runDir, 'metrics.jsonl');
  if (!existsSync(file)) return [];
  return jsonLines(file).filter((r) => typeof r.val_ce === 'number') as { step: number; val_ce: number }[];
}

/** A JSON-lines file's objects; a line that is not a JSON object is bad input naming the file and the line. */
function jsonLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8').split('\n').flatMap((line, i) => {
    if (!line.trim()) return [];
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (e) {
      throw new SweepDirError(`${file} line ${i + 1} must be a JSON object (got ${show(line.slice(0, 40))}: ` +
        `${(e as Error).message})`);
    }
    if (typeof r !== 'object' || r === null || Array.isArray(r)) {
      throw new SweepDirError(`${file} line ${i + 1} must be a JSON object (got ${show(line.slice(0, 40))})`);
    }
    return [r as Record<string, unknown>];
  });
}

/**
 * An spmd profile's counterpart of dispatch overhead: packing, unpacking and barrier waits, as a share of the
 * step, mean over devices.
 */
function spmdOverhead(profile: { step_ms?: number; devices?: { pack_unpack_ms?: number; barrier_wait_ms?: number }[] } | undefined): number | null {
  const ds = profile?.devices?.filter((d) => d.pack_unpack_ms !== undefined && d.barrier_wait_ms !== undefined) ?? [];
  if (!profile?.step_ms || ds.length === 0) return null;
  return ds.reduce((a, d) => a + (d.pack_unpack_ms! + d.barrier_wait_ms!) / profile.step_ms!, 0) / ds.length;
}

interface Projected {
  step_ms: number | null;
  tokens_per_s: number | null;
  /** why there is no projection, when one was asked for */
  error: string | null;
  /** the cluster's notes on this run (clusterFor), '; ' between them, else null */
  note: string | null;
}

const NOT_PROJECTED: Projected = { step_ms: null, tokens_per_s: null, error: null, note: null };

/**
 * A run projected onto a cluster from its own recorded routing (simulate). A run the cluster cannot
 * hold (its batch over the GPUs, a plan that does not divide them) has no projection, and says why.
 */
async function projected(runDir: string, cluster: string | undefined): Promise<Projected> {
  if (!cluster) return NOT_PROJECTED;
  const [{ loadCluster }, { clusterFor }, { project }, { runWorkload }] = await Promise.all([
    import('../../sim/cluster.js'), import('../../sim/machine.js'), import('../../sim/project.js'), import('../../sim/workload.js')]);
  try {
    const w = runWorkload(runDir);
    const on = clusterFor(loadCluster(cluster), w.config); // this machine: the run's own device threads
    const p = project(on.cluster, w);
    const note = on.notes.length > 0 ? on.notes.map((n) => n.replace(/^note: /, '')).join('; ') : null;
    return { step_ms: p.step_ms, tokens_per_s: p.tokens_per_s, error: null, note };
  } catch (e) {
    return { ...NOT_PROJECTED, error: (e as Error).message.replace(/^config error: /, '') };
  }
}

/** Mean ms a training step over the whole run; null when summary.json does not know its training time. */
const stepMs = (summary: { train_s?: number | null; steps?: number } | undefined) =>
  typeof summary?.train_s === 'number' ? (summary.train_s * 1000) / Math.max(1, summary.steps ?? 0) : null;

/**
 * Reads what a finished point wrote: summary.json, metrics.jsonl, profile/profile.json; and projects it onto
 * `cluster` when given.
 */
export async function collectResult(
  p: SweepPoint, runDir: string, status: 'ok' | 'failed', error: string | null, wallS: number, cluster?: string,
): Promise<ResultRow> {
  const summary = status === 'ok' ? readJson(join(runDir, 'summary.json')) : undefined;
  const profile = status === 'ok' ? readJson(join(runDir, 'profile', 'profile.json')) : undefined;
  const last = trainingRecords(runDir).at(-1);
  const mean = (f: (l: NonNullable<typeof last>['layers'] extends (infer L)[] | undefined ? L : never) => number) =>
    last?.layers && last.layers.length > 0 ? last.layers.reduce((a, l) => a + f(l), 0) / last.layers.length : null;
  const proj = status === 'ok' ? await projected(runDir, cluster) : NOT_PROJECTED;
  return {
    point: p.name, vary: p.vary, seed: p.seed,
    params_total: summary?.params_total ?? null,
    params_active_per_token: summary?.params_active_per_token ?? null,
    train_ce: summary?.train_ce ?? null,
    val_ce: summary?.val_ce ?? null,
    tokens_per_s: summary?.tokens_per_s ?? null,
    step_ms: stepMs(summary),
    dispatch_overhead_fraction: profile?.dispatch_overhead?.fraction ?? spmdOverhead(profile),
    drop_fraction: mean((l) => l.drop_fraction),
    load_max_over_mean: mean((l) => l.load_max_over_mean),
    projected_step_ms: proj.step_ms, projected_tokens_per_s: proj.tokens_per_s, projection_error: proj.error,
    projection_note: proj.note,
    run_note: typeof summary?.note === 'string' ? summary.note : null,
    wall_s: wallS, status, error, config_hash: configHash(p.config),
  };
}

const csvCell = (v: unknown): string => {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? String(+v.toPrecision(8)) : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** results.jsonl (one JSON object a row, the swept keys flattened in) and results.csv, each replaced atomically. */
export function writeResults(dir: string, keys: string[], rows: ResultRow[]): void {
  const flat = rows.map((r) => ({
    point: r.point, ...Object.fromEntries(keys.map((k) => [k, r.vary[k] ?? null])),
    ...Object.fromEntries(FIXED_COLUMNS.map((c) => [c, r[c]]))
  }));
  const write = (name: string, text: string) => writeFileAtomic(join(dir, name), text);
  write('results.jsonl', flat.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const columns = ['point', ...keys, ...FIXED_COLUMNS];
  write(
    'results.csv',
    `${columns.join(',')}\n${flat.map((r) => columns.map((c) => csvCell((r as Record<string, unknown>)[c])).join(',')).join('\n')}\n`,
  );
}

/** Rows of a previous run of the sweep (for --resume and `report`), keyed by point name. */
export function readResults(dir: string, keys: string[]): Map<string, ResultRow> {
  const file = join(dir, 'results.jsonl');
  const out = new Map<string, ResultRow>();
  if (!existsSync(file)) return out;
  for (const [i, r] of jsonLines(file).entries()) {
    if (typeof r.point !== 'string' || (r.status !== 'ok' && r.status !== 'failed')) {
      throw new SweepDirError(`${file} row ${i + 1} must have a point name and a status ok or failed (got point ` +
        `${show(r.point)}, status ${show(r.status)})`);
    }
    // columns absent from rows written before them
    const since = {
      projection_error: r.projection_error ?? null, projection_note: r.projection_note ?? null,
      run_note: r.run_note ?? null,
    };
    const vary = Object.fromEntries(keys.map((k) => [k, r[k]]));
    out.set(r.point as string, { ...(r as unknown as ResultRow), ...since, vary } as ResultRow);
  }
  return out;
}
