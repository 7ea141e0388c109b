import { join } from 'node:path';
import { writeFileAtomic } from '../../core/util/fs.js';
import { METRIC_COLUMNS, type MetricColumn, type ResultRow } from './results.js';
import { difference, estimate, type Difference, type Estimate } from './stats.js';

/** One point of a sweep (its swept values, every seed of it together): each measurement's estimate, and its difference from the baseline point. */
export interface PointSummary {
  /** the swept keys' values */
  vary: Record<string, unknown>;
  label: string;
  seeds: number[];
  /** runs that finished of this point's seeds */
  ok: number;
  baseline: boolean;
  estimates: Partial<Record<MetricColumn, Estimate>>;
  /** point − baseline per measurement (absent for the baseline itself and without one) */
  differences: Partial<Record<MetricColumn, Difference>>;
}

const keyOf = (vary: Record<string, unknown>, keys: string[]) => JSON.stringify(keys.map((k) => vary[k] ?? null));
const short = (key: string) => key.split('.').at(-1)!;
/** A point's name on charts and tables: its `label` when the sweep file gave one, else its swept values (the keys it sets). */
export const pointLabel = (vary: Record<string, unknown>, keys: string[]) =>
  typeof vary.label === 'string' ? vary.label : keys.filter((k) => k !== 'label' && vary[k] !== undefined).map((k) => `${short(k)}=${String(vary[k])}`).join(' ') || 'all';

/** Groups the runs by point (seeds together), in the order the points first appear; estimates every measurement that was recorded. */
export function summarise(rows: ResultRow[], keys: string[], baseline?: Record<string, unknown>): PointSummary[] {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) groups.set(keyOf(r.vary, keys), [...(groups.get(keyOf(r.vary, keys)) ?? []), r]);
  const isBaseline = (vary: Record<string, unknown>) => baseline !== undefined && Object.entries(baseline).every(([k, v]) => JSON.stringify(vary[k]) === JSON.stringify(v));
  const values = (runs: ResultRow[], c: MetricColumn) => runs.filter((r) => r.status === 'ok' && typeof r[c] === 'number').map((r) => r[c] as number);
  const base = [...groups.values()].find((runs) => isBaseline(runs[0]!.vary));
  return [...groups.values()].map((runs) => {
    const vary = runs[0]!.vary;
    const estimates: PointSummary['estimates'] = {};
    const differences: PointSummary['differences'] = {};
    for (const c of METRIC_COLUMNS) {
      const v = values(runs, c);
      if (v.length === 0) continue;
      estimates[c] = estimate(v);
      if (base && !isBaseline(vary)) {
        const b = values(base, c);
        if (b.length > 0) differences[c] = difference(v, b);
      }
    }
    return { vary, label: pointLabel(vary, keys), seeds: runs.map((r) => r.seed), ok: runs.filter((r) => r.status === 'ok').length, baseline: isBaseline(vary), estimates, differences };
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
 * summary.csv (and summary.jsonl): one row per point: its swept values, seeds, runs ok, then per
 * recorded measurement its mean, standard error and 95% interval over seeds, and its difference from
 * the baseline point with the interval and whether the interval excludes zero.
 */
export function writeSummary(dir: string, keys: string[], points: PointSummary[]): void {
  const measured = recordedColumns(points);
  const columns = ['point', ...keys, 'seeds', 'ok', 'baseline', ...measured.flatMap((c) => [`${c}_mean`, `${c}_se`, `${c}_lo`, `${c}_hi`, `${c}_diff`, `${c}_diff_lo`, `${c}_diff_hi`, `${c}_diff_clear`])];
  const rows = points.map((p) => {
    const row: Record<string, unknown> = { point: p.label, ...Object.fromEntries(keys.map((k) => [k, p.vary[k] ?? null])), seeds: p.seeds.length, ok: p.ok, baseline: p.baseline };
    for (const c of measured) {
      const e = p.estimates[c];
      const d = p.differences[c];
      Object.assign(row, { [`${c}_mean`]: e?.mean, [`${c}_se`]: e?.se, [`${c}_lo`]: e?.lo, [`${c}_hi`]: e?.hi, [`${c}_diff`]: d?.mean, [`${c}_diff_lo`]: d?.lo, [`${c}_diff_hi`]: d?.hi, [`${c}_diff_clear`]: d?.clear });
    }
    return row;
  });
  const write = (name: string, text: string) => writeFileAtomic(join(dir, name), text);
  write('summary.csv', `${columns.join(',')}\n${rows.map((r) => columns.map((c) => cell(r[c])).join(',')).join('\n')}\n`);
  write('summary.jsonl', rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}
