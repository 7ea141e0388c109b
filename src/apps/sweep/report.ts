import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import YAML from 'yaml';
import { show } from '../../core/config/errors.js';
import { chartSvg, htmlPage, type Table } from '../../core/instrument/page.js';
import { minOf } from '../../core/util/extremes.js';
import { sweepCharts } from './charts.js';
import { SweepDirError } from './errors.js';
import { DIFFERENCE_NOTE, runNotes } from './notes.js';
import { FIXED_COLUMNS, readResults, type MetricColumn, type ResultRow } from './results.js';
import { pointLabel, recordedColumns, summarise, writeSummary, type PointSummary } from './summary.js';

const fmt = (v: number | undefined, digits = 4) => (v === undefined || Number.isNaN(v) ? '' : v.toFixed(digits));

/**
 * The per-point table: each measurement's mean ± 95% half-width, its difference from the baseline unpaired
 * and paired by seed.
 */
export function summaryTable(points: PointSummary[], baseline?: string, only?: MetricColumn[]): Table {
  const measured = recordedColumns(points).filter((c) => !only || only.includes(c));
  // losses and fractions to 4 decimals; times and rates to 4 significant digits of the column's smallest mean
  // (a projected 0.4997 ms step and a measured 20,687 tokens/s in one table)
  const places = new Map(measured.map((c) => {
    if (!c.endsWith('_ms') && !c.endsWith('per_s')) return [c, 4];
    const least = minOf(points.map((p) => Math.abs(p.estimates[c]?.mean ?? Infinity)).filter((v) => v > 0));
    return [c, Number.isFinite(least) ? Math.min(4, Math.max(0, 3 - Math.floor(Math.log10(least)))) : 1];
  }));
  const digits = (c: MetricColumn) => places.get(c)!;
  const base = points.find((p) => p.baseline);
  const delta = (
    c: MetricColumn, d: { mean: number; se: number; lo: number; hi: number; clear: boolean } | undefined,
  ) => {
    if (!d) return '';
    const interval = d.se > 0 ? ` [${fmt(d.lo, digits(c))}, ${fmt(d.hi, digits(c))}]` : '';
    return `${d.mean >= 0 ? '+' : ''}${fmt(d.mean, digits(c))}${interval}${d.clear ? ' ✓' : ''}`;
  };
  // "(n pairs)" where some seed of the point or of the baseline has no partner
  const paired = (p: PointSummary, c: MetricColumn) => {
    const q = p.paired[c];
    if (!q) return '';
    const seeds = Math.max(p.estimates[c]?.n ?? 0, base?.estimates[c]?.n ?? 0);
    return `${delta(c, q)}${q.n < seeds ? ` (${q.n} pair${q.n > 1 ? 's' : ''})` : ''}`;
  };
  return {
    title: `Per point, over its seeds: mean ± 95% half-width${baseline
      ? `; Δ from the baseline (${baseline}), unpaired (Welch) and paired by seed, [95% interval], ✓ where it excludes zero` : ''}`,
    columns: ['point', 'seeds ok', ...measured.flatMap((c) => (baseline ? [c, `Δ ${c} Welch`, `Δ ${c} paired`] : [c]))],
    rows: points.map((p) => [
      `${p.label}${p.baseline ? ' (baseline)' : ''}`, `${p.ok}/${p.seeds.length}`,
      ...measured.flatMap((c) => {
        const e = p.estimates[c];
        // one seed: the value alone, no interval (nothing says how large chance is)
        const mean = e ? (e.n > 1 ? `${fmt(e.mean, digits(c))} ± ${fmt((e.hi - e.lo) / 2, digits(c))}` : fmt(
          e.mean, digits(c),
        )) : '';
        return baseline ? [mean, delta(c, p.differences[c]), paired(p, c)] : [mean];
      }),
    ]),
  };
}

/** A table as GitHub markdown (for a README): a header row, a rule, a row per table row. */
export function markdownTable(t: Table): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(t.columns), line(t.columns.map(() => '---')), ...t.rows.map(line)].join('\n') + '\n';
}

interface SweepDir {
  name: string;
  keys: string[];
  rows: ResultRow[];
  planned: number;
  baseline?: Record<string, unknown>;
  points: PointSummary[];
}

type Resolved = {
  name?: string; grid?: Record<string, unknown>; runs?: Record<string,
  unknown>[]; points: { name: string }[]; baseline?: Record<string, unknown> | null,
};

/** A sweep directory's sweep.yaml, as a sweep writes it: a mapping with a list of named points. */
function readResolved(file: string): Resolved {
  const doc = YAML.parseDocument(readFileSync(file, 'utf8'));
  const bad = (what: string) => new SweepDirError(`${file} must be the sweep.yaml a sweep writes (got ${what})`);
  if (doc.errors.length > 0) throw bad(`invalid YAML at line ${doc.errors[0]!.linePos?.[0]?.line ?? '?'}`);
  const r = doc.toJS() as Partial<Resolved> | null;
  if (typeof r !== 'object' || r === null || !Array.isArray(r.points)) throw bad('no points list');
  if (r.points.some((p) => typeof p?.name !== 'string')) throw bad('a point without a name');
  return r as Resolved;
}

/** What a sweep directory holds: its resolved sweep.yaml, its results in point order, summarised by point. */
export function readSweepDir(dir: string, against?: string): SweepDir {
  if (!existsSync(dir)) throw new SweepDirError(`report DIR must be a sweep directory (got ${show(dir)}: no such ` +
    `directory)`);
  if (!existsSync(join(
    dir, 'sweep.yaml',
  ))) throw new SweepDirError(`report DIR must be a sweep directory, with sweep.yaml (got ${show(dir)}: no ` +
    `sweep.yaml)`);
  const resolved = readResolved(join(dir, 'sweep.yaml'));
  const keys = [...new Set([
    ...Object.keys(resolved.grid ?? {}), ...(resolved.runs ?? []).flatMap((r) => Object.keys(r)),
  ])];
  const byName = readResults(dir, keys);
  const rows = resolved.points.map((p) => byName.get(p.name)).filter((r): r is ResultRow => r !== undefined);
  const baseline = against === undefined ? resolved.baseline ?? undefined : pickBaseline(rows, keys, against);
  return {
    name: resolved.name ?? basename(dir), keys, rows, planned: resolved.points.length, baseline,
    points: summarise(rows, keys, baseline),
  };
}

/**
 * `report --baseline POINT`: the point labelled POINT (as in the table's first column) becomes the one
 * every difference is taken from, in place of the sweep file's baseline.
 */
function pickBaseline(rows: ResultRow[], keys: string[], label: string): Record<string, unknown> {
  const labels = [...new Set(rows.map((r) => pointLabel(r.vary, keys)))];
  const row = rows.find((r) => pointLabel(r.vary, keys) === label);
  if (!row) throw new SweepDirError(`report --baseline must name a point of the sweep, one of ${labels.join(', ')} ` +
    `(got ${show(label)})`);
  return Object.fromEntries(keys.filter((k) => row.vary[k] !== undefined).map((k) => [k, row.vary[k]]));
}

/** The table and the notes under it, as markdown (summary.md, `report --markdown`). */
const markdownWithNotes = (
  table: Table, notes: string[],
) => `${markdownTable(table)}${notes.map((n) => `\n${n}\n`).join('')}`;

/**
 * The lines under a sweep's table: what its Δ columns are (with a baseline), and why some cells are empty
 * (runNotes).
 */
const sweepNotes = (s: SweepDir) => [...(s.baseline ? [DIFFERENCE_NOTE] : []), ...runNotes(s.rows)];

/**
 * The per-point table of a sweep directory as markdown, with only the `only` measurements when given,
 * and the lines under it: what its Δ columns are, and a line per reason some cells are empty.
 */
export function summaryMarkdown(dir: string, only?: MetricColumn[], against?: string): string {
  const s = readSweepDir(dir, against);
  return markdownWithNotes(
    summaryTable(s.points, s.baseline ? pointLabel(s.baseline, s.keys) : undefined, only), sweepNotes(s),
  );
}

/**
 * Writes DIR/report.html, DIR/summary.csv (and .jsonl, .md) and DIR/charts/<chart>.svg from what the sweep
 * directory holds.
 */
export async function writeReport(dir: string): Promise<string> {
  const s = readSweepDir(dir);
  const { name, keys, rows, planned, baseline, points } = s;
  writeSummary(dir, keys, points);
  const summary = summaryTable(points, baseline ? pointLabel(baseline, keys) : undefined);
  const notes = sweepNotes(s);
  writeFileSync(join(dir, 'summary.md'), `${summary.title}\n\n${markdownWithNotes(summary, notes)}`);
  const { charts, missing } = sweepCharts(dir, rows, keys, points);
  mkdirSync(join(dir, 'charts'), { recursive: true });
  for (const c of charts) writeFileSync(join(dir, 'charts', `${c.id}.svg`), await chartSvg(c.spec));
  const columns = ['point', ...keys, ...FIXED_COLUMNS];
  const html = htmlPage({
    title: `switch-sim sweep: ${name}`,
    intro: [
      `${rows.length} of ${planned} runs recorded (${rows.filter((r) => r.status === 'ok').length} ok), ` +
        `${points.length} points. Swept: ${keys.join(', ') || 'nothing'}. Each chart is also in charts/ as SVG; ` +
        `summary.csv has a row per point, results.csv a row per run.`,
      ...missing,
      ...notes,
    ],
    charts,
    tables: [
      summary,
      { title: 'Every run (click a header to sort)', columns, rows: rows.map((r) => columns.map((c) => {
        const v = c === 'point' ? r.point : keys.includes(c) ? r.vary[c] : (r as unknown as Record<string, unknown>)[c];
        return typeof v === 'number' ? v : v === null || v === undefined ? '' : String(v);
      })) },
    ],
  });
  writeFileSync(join(dir, 'report.html'), html);
  return join(dir, 'report.html');
}
