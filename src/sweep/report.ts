import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { chartSvg, htmlPage, type Chart } from '../report/page.js';
import { FIXED_COLUMNS, readResults, trainingRecords, type ResultRow } from './results.js';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';

const short = (key: string) => key.split('.').at(-1)!;
const label = (r: ResultRow, keys: string[]) => keys.map((k) => `${short(k)}=${String(r.vary[k])}`).join(' ') || r.point;

/** The key a chart puts on x: the first swept key of `prefer` that varies, else the first swept key. */
function axisKey(keys: string[], prefer: string[]): string | undefined {
  return prefer.find((k) => keys.includes(k)) ?? keys[0];
}

/** Numbers stay numbers on an axis; anything else is a category. */
const fieldType = (rows: Record<string, unknown>[], f: string) => (rows.every((r) => typeof r[f] === 'number') ? 'quantitative' : 'ordinal');

function againstKey(id: string, title: string, note: string, rows: ResultRow[], keys: string[], x: string | undefined, y: keyof ResultRow, yTitle: string): Chart {
  const others = keys.filter((k) => k !== x);
  // one line per combination of the other swept keys; seeds of a point share its line and band
  const values = rows.filter((r) => typeof r[y] === 'number').map((r) => ({ x: x ? r.vary[x] : r.point, y: r[y], seed: r.seed, series: others.length > 0 ? label(r, others) : 'mean over seeds', point: r.point }));
  const xType = fieldType(values, 'x');
  // counts that double (experts, devices) read best on a log₂ axis
  const xScale = xType === 'quantitative' && (x === 'moe.n_experts' || x === 'parallel.devices') ? { type: 'log' as const, base: 2 } : {};
  const spec: TopLevelSpec = {
    width: 520, height: 260,
    data: { values },
    layer: [
      { mark: { type: 'errorband', extent: 'stdev' }, encoding: { x: { field: 'x', type: xType, title: x ?? 'point', scale: xScale }, y: { field: 'y', type: 'quantitative', title: yTitle }, color: { field: 'series', type: 'nominal', title: null } } },
      { mark: { type: 'line', point: true, tooltip: true }, encoding: { x: { field: 'x', type: xType, scale: xScale }, y: { field: 'y', type: 'quantitative', aggregate: 'mean', scale: { zero: false } }, color: { field: 'series', type: 'nominal', title: null } } },
    ],
  };
  return { id, title, note, spec };
}

/** Every chart of the report, from the sweep directory's results and each point's metrics. */
export function sweepCharts(dir: string, rows: ResultRow[], keys: string[]): Chart[] {
  const ok = rows.filter((r) => r.status === 'ok');
  const curves = ok.flatMap((r) => trainingRecords(join(dir, 'runs', r.point)).map((m) => ({ point: r.point, step: m.step, loss: m.loss })));
  const loads = ok.flatMap((r) => trainingRecords(join(dir, 'runs', r.point)).flatMap((m) => {
    const layers = m.layers ?? [];
    if (layers.length === 0) return [];
    const E = layers[0]!.tokens_per_expert.length;
    const total = layers.reduce((a, l) => a + l.tokens_per_expert.reduce((x, y) => x + y, 0), 0);
    return Array.from({ length: E }, (_, e) => ({ point: r.point, step: m.step, expert: e, share: layers.reduce((a, l) => a + l.tokens_per_expert[e]!, 0) / Math.max(1, total) }));
  }));
  const points = [...new Set(loads.map((l) => l.point))];
  const heat: TopLevelSpec = {
    width: 700, height: 220,
    data: { values: loads },
    params: [{ name: 'point', value: points.at(-1) ?? '', bind: { input: 'select', options: points, name: 'point ' } }],
    transform: [{ filter: 'datum.point === point' }],
    mark: { type: 'rect', tooltip: true },
    encoding: {
      x: { field: 'step', type: 'ordinal', title: 'step', axis: { labelOverlap: true } },
      y: { field: 'expert', type: 'ordinal', title: 'expert' },
      color: { field: 'share', type: 'quantitative', title: 'share of kept tokens', scale: { scheme: 'viridis' } },
    },
  };
  const lossSpec: TopLevelSpec = {
    width: 700, height: 300,
    data: { values: curves },
    mark: { type: 'line', tooltip: true },
    encoding: {
      x: { field: 'step', type: 'quantitative' },
      y: { field: 'loss', type: 'quantitative', scale: { zero: false }, title: 'training loss (ce + aux)' },
      color: { field: 'point', type: 'nominal', legend: { symbolLimit: 50, labelLimit: 300 } },
    },
  };
  const scale = axisKey(keys, ['moe.n_experts', 'parallel.devices']);
  const cf = axisKey(keys, ['moe.capacity_factor']);
  return [
    { id: 'loss', title: 'Training loss against step, every point', spec: lossSpec },
    ...(keys.length > 0 ? keys : [undefined]).map((k, i) => againstKey(`val_${i}`, `Validation loss against ${k ?? 'point'}`, 'Mean over seeds, band ± one standard deviation.', ok, keys, k, 'val_ce', 'validation cross-entropy')),
    againstKey('tokens', `Tokens/s against ${scale ?? 'point'}`, 'Training time only (evaluation and checkpoints excluded).', ok, keys, scale, 'tokens_per_s', 'tokens/s'),
    againstKey('dispatch', `Dispatch-overhead fraction against ${scale ?? 'point'}`, 'From each point\'s profile (record: profile); 0 where the sweep did not profile.',
      ok.map((r) => ({ ...r, dispatch_overhead_fraction: r.dispatch_overhead_fraction ?? 0 })), keys, scale, 'dispatch_overhead_fraction', 'fraction of a step'),
    againstKey('drops', `Drop fraction against ${cf ?? 'point'}`, 'Tokens dropped over capacity, mean over Switch layers, last logged step.', ok, keys, cf, 'drop_fraction', 'drop fraction'),
    { id: 'load', title: 'Per-expert load over steps', note: 'Share of kept tokens per expert (all Switch layers); choose the point below the chart.', spec: heat },
  ];
}

/** Writes DIR/report.html and DIR/charts/<chart>.svg from what the sweep directory holds. */
export async function writeReport(dir: string): Promise<string> {
  if (!existsSync(join(dir, 'sweep.yaml'))) throw new Error(`${dir} is not a sweep directory (no sweep.yaml)`);
  const resolved = YAML.parse(readFileSync(join(dir, 'sweep.yaml'), 'utf8')) as { grid: Record<string, unknown>; runs: Record<string, unknown>[]; points: { name: string }[] };
  const keys = [...new Set([...Object.keys(resolved.grid ?? {}), ...(resolved.runs ?? []).flatMap((r) => Object.keys(r))])];
  const byName = readResults(dir, keys);
  const rows = resolved.points.map((p) => byName.get(p.name)).filter((r): r is ResultRow => r !== undefined);
  const charts = sweepCharts(dir, rows, keys);
  mkdirSync(join(dir, 'charts'), { recursive: true });
  for (const c of charts) writeFileSync(join(dir, 'charts', `${c.id}.svg`), await chartSvg(c.spec));
  const columns = ['point', ...keys, ...FIXED_COLUMNS];
  const html = htmlPage({
    title: `switch-sim sweep: ${dir}`,
    intro: [`${rows.length} of ${resolved.points.length} points recorded (${rows.filter((r) => r.status === 'ok').length} ok). Swept: ${keys.join(', ') || 'nothing'}. Each chart is also in charts/ as SVG.`],
    charts,
    tables: [{ title: 'Results (click a header to sort)', columns, rows: rows.map((r) => columns.map((c) => {
      const v = c === 'point' ? r.point : keys.includes(c) ? r.vary[c] : (r as unknown as Record<string, unknown>)[c];
      return typeof v === 'number' ? v : v === null || v === undefined ? '' : String(v);
    })) }],
  });
  writeFileSync(join(dir, 'report.html'), html);
  return join(dir, 'report.html');
}
