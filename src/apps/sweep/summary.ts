import { join } from 'node:path';
import { writeFileAtomic } from '../../core/util/fs.js';
import { METRIC_COLUMNS, type MetricColumn, type ResultRow } from './results.js';
import {
  difference, estimate, pairedDifference, type Difference, type Estimate, type PairedDifference,
} from './stats.js';

/**
 * One point of a sweep (its swept values, every seed of it together): each measurement's estimate, and its
 * difference from the baseline point.
 */
export interface PointSummary {
  /** the swept keys' values */
  vary: Record<string, unknown>;
  label: string;
  seeds: number[];
  /** runs that finished of this point's seeds */
  ok: number;
  baseline: boolean;
  estimates: Partial<Record<MetricColumn, Estimate>>;
  /** point − baseline per measurement, unpaired (Welch; absent for the baseline itself and without one) */
  differences: Partial<Record<MetricColumn, Difference>>;
  /** point − baseline per measurement paired by seed, over the seeds both have (absent where they share none) */
  paired: Partial<Record<MetricColumn, PairedDifference>>;
}

const keyOf = (vary: Record<string, unknown>, keys: string[]) => JSON.stringify(keys.map((k) => vary[k] ?? null));
const short = (key: string) => key.split('.').at(-1)!;
/**
 * A point's name on charts and tables: its `label` when the sweep file gave one, else its swept values (the
 * keys it sets).
 */
export const pointLabel = (vary: Record<string, unknown>, keys: string[]) =>
  typeof vary.label === 'string'
    ? vary.label
    : keys
      .filter((k) => k !== 'label' && vary[k] !== undefined)
      .map((k) => `${short(k)}=${String(vary[k])}`)
      .join(' ') || 'all';

/**
 * Groups the runs by point (seeds together), in the order the points first appear; estimates every
 * measurement that was recorded.
 */
export function summarise(rows: ResultRow[], keys: string[], baseline?: Record<string, unknown>): PointSummary[] {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) groups.set(keyOf(r.vary, keys), [...(groups.get(keyOf(r.vary, keys)) ?? []), r]);
  const isBaseline = (
    vary: Record<string, unknown>,
  ) => baseline !== undefined && Object.entries(baseline).every(([
    k, v,
  ]) => JSON.stringify(vary[k]) === JSON.stringify(v));
  const ok = (runs: ResultRow[], c: MetricColumn) => runs.filter((r) => r.status === 'ok' && typeof r[c] === 'number');
  const values = (runs: ResultRow[], c: MetricColumn) => ok(runs, c).map((r) => r[c] as number);
  const bySeed = (runs: ResultRow[], c: MetricColumn) => new Map(ok(runs, c).map((r) => [r.seed, r[c] as number]));
  const base = [...groups.values()].find((runs) => isBaseline(runs[0]!.vary));
  return [...groups.values()].map((runs) => {
    const vary = runs[0]!.vary;
    const estimates: PointSummary['estimates'] = {};
    const differences: PointSummary['differences'] = {};
    const paired: PointSummary['paired'] = {};
    for (const c of METRIC_COLUMNS) {
      const v = values(runs, c);
      if (v.length === 0) continue;
      estimates[c] = estimate(v);
      if (base && !isBaseline(vary)) {
        const b = values(base, c);
        if (b.length > 0) differences[c] = difference(v, b);
        const d = pairedDifference(bySeed(runs, c), bySeed(base, c));
        if (d.n > 0) paired[c] = d;
      }
    }
    const seeds = runs.map((r) => r.seed);
    const done = runs.filter((r) => r.status === 'ok').length;
    return {
      vary, label: pointLabel(vary, keys), seeds, ok: done, baseline: isBaseline(vary), estimates, differences, paired,
    };
  });
}

const cell = (v: unknown): string => {
  if (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v))) return '';
  const s = typeof v === 'number' ? String(+v.toPrecision(8)) : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The recorded measurements of a summary (columns with at least one estimate). */
export const recordedColumns = (points: PointSummary[]) => METRIC_COLUMNS.filter((c) => points.some((p) => p.estimates[c]));

/**
 * summary.csv's columns for one measurement: its estimate, then point − baseline unpaired (Welch), then
 * paired by seed.
 */
const metricColumns = (c: MetricColumn) => [
  `${c}_mean`, `${c}_se`, `${c}_lo`, `${c}_hi`,
  `${c}_diff`, `${c}_diff_se`, `${c}_diff_lo`, `${c}_diff_hi`, `${c}_diff_clear`,
  `${c}_paired_diff`, `${c}_paired_diff_se`, `${c}_paired_diff_lo`, `${c}_paired_diff_hi`, `${c}_paired_diff_clear`,
  `${c}_pairs`,
];

/** One measurement's cells of a point's row, named as metricColumns names them. */
function metricCells(p: PointSummary, c: MetricColumn): Record<string, unknown> {
  const e = p.estimates[c];
  const d = p.differences[c];
  const q = p.paired[c];
  const cells = [
    e?.mean, e?.se, e?.lo, e?.hi, d?.mean, d?.se, d?.lo, d?.hi, d?.clear, q?.mean, q?.se, q?.lo, q?.hi, q?.clear, q?.n,
  ];
  return Object.fromEntries(metricColumns(c).map((name, i) => [name, cells[i]]));
}

/**
 * summary.csv (and summary.jsonl): one row per point: its swept values, seeds, runs ok, then per
 * recorded measurement its mean, standard error and 95% interval over seeds; its difference from the
 * baseline point unpaired (`_diff`: difference of the means, Welch's interval) and paired by seed
 * (`_paired_diff`: the mean of the per-seed differences over the `_pairs` seeds both have, its standard
 * error and Student-t interval), each with whether its interval excludes zero (`_clear`).
 */
export function writeSummary(dir: string, keys: string[], points: PointSummary[]): void {
  const measured = recordedColumns(points);
  const columns = ['point', ...keys, 'seeds', 'ok', 'baseline', ...measured.flatMap(metricColumns)];
  const rows = points.map((p) => ({
    point: p.label, ...Object.fromEntries(keys.map((k) => [k, p.vary[k] ?? null])), seeds: p.seeds.length, ok: p.ok,
    baseline: p.baseline,
    ...Object.assign({}, ...measured.map((c) => metricCells(p, c))) as Record<string, unknown>,
  }));
  const write = (name: string, text: string) => writeFileAtomic(join(dir, name), text);
  write(
    'summary.csv',
    `${columns.join(',')}\n${rows.map((r) => columns.map((c) => cell((r as Record<string, unknown>)[c])).join(',')).join('\n')}\n`,
  );
  write('summary.jsonl', rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}
