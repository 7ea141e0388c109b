import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Chart } from '../../core/instrument/page.js';
import { evalRecords, trainingRecords, type MetricColumn, type ResultRow } from './results.js';
import { estimate } from './stats.js';
import { pointLabel, recordedColumns, type PointSummary } from './summary.js';

/** What each measurement is called on a chart, and how to record it when a sweep did not. */
const METRICS: Record<MetricColumn, { title: string; unrecorded: string }> = {
  train_ce: { title: 'training cross-entropy (last log_every steps)', unrecorded: 'every run records it' },
  val_ce: { title: 'validation cross-entropy', unrecorded: 'set train.eval_batches ≥ 1' },
  tokens_per_s: { title: 'tokens/s here', unrecorded: 'every run records it' },
  step_ms: { title: 'ms a step here', unrecorded: 'every run records it' },
  dispatch_overhead_fraction: { title: 'dispatch-overhead fraction (profiled steps)', unrecorded: 'add `record: [train, profile]` to the sweep file' },
  drop_fraction: { title: 'drop fraction (last logged step)', unrecorded: 'only Switch layers drop tokens' },
  load_max_over_mean: {
    title: 'load: busiest expert\'s kept token-choices over the mean (last logged step)', unrecorded: 'only Switch layers have a load',
  },
  projected_step_ms: { title: 'ms a step projected (simulate)', unrecorded: 'add `simulate: <cluster file>` to the sweep file' },
  projected_tokens_per_s: { title: 'tokens/s projected (simulate)', unrecorded: 'add `simulate: <cluster file>` to the sweep file' },
};

const DOUBLING = ['moe.n_experts', 'parallel.devices', 'moe.top_k'];
/** keys swept over orders of magnitude: a log₁₀ axis with their own values as ticks */
const MAGNITUDES = ['train.lr', 'train.min_lr', 'train.weight_decay', 'moe.balance_loss_coef', 'moe.z_loss_coef', 'moe.router_jitter'];

/** The key a chart puts on x: the points' labels when the sweep names them, else the first swept key of `prefer`, else the first swept key. */
const axisKey = (keys: string[], prefer: string[]) => (keys.includes('label') ? 'label' : prefer.find((k) => keys.includes(k)) ?? keys[0]);

/** An x encoding for a swept key: numbers on a linear axis, counts that double on a log₂ axis with their own values as ticks, anything else a category. */
function xEncoding(values: unknown[], key: string | undefined) {
  const numbers = values.every((v) => typeof v === 'number');
  // in the sweep file's order
  if (!key || !numbers) return { field: 'x', type: 'ordinal' as const, title: !key || key === 'label' ? 'point' : key, sort: null, axis: { labelAngle: 0 } };
  const ticks = [...new Set(values as number[])].sort((a, b) => a - b);
  if (DOUBLING.includes(key) && ticks.every((v) => v > 0)) return {
    field: 'x', type: 'quantitative' as const, title: key, scale: { type: 'log' as const, base: 2 }, axis: { values: ticks, format: 'd' },
  };
  if (MAGNITUDES.includes(key) && ticks.every((v) => v > 0)) return {
    field: 'x', type: 'quantitative' as const, title: key, scale: { type: 'log' as const, base: 10 }, axis: { values: ticks, format: '~g' },
  };
  return { field: 'x', type: 'quantitative' as const, title: key, axis: { values: ticks } };
}

/** A measurement against a swept key: each point's mean and its 95% interval over seeds (error bars), one line per combination of the other keys. */
function againstKey(id: string, points: PointSummary[], keys: string[], x: string | undefined, metric: MetricColumn): Chart {
  const others = x === 'label' ? [] : keys.filter((k) => k !== x); // labelled points are one series
  const values = points.filter((p) => p.estimates[metric]).map((p) => {
    const e = p.estimates[metric]!;
    return { x: x ? p.vary[x] : p.label, mean: e.mean, lo: e.lo, hi: e.hi, n: e.n, series: others.length > 0 ? pointLabel(p.vary, others) : 'mean over seeds' };
  });
  const enc = xEncoding(values.map((v) => v.x), x);
  const color = { field: 'series', type: 'nominal' as const, title: null };
  const spec: TopLevelSpec = {
    width: 520, height: 260, data: { values },
    layer: [
      {
        mark: { type: 'rule' },
        encoding: { x: enc, y: { field: 'lo', type: 'quantitative', title: METRICS[metric].title, scale: { zero: false } }, y2: { field: 'hi' }, color },
      },
      {
        mark: { type: 'line', point: true, tooltip: true },
        encoding: {
          x: enc, y: { field: 'mean', type: 'quantitative' }, color,
          tooltip: [
            { field: 'x', title: x ?? 'point' }, { field: 'mean', format: '.4f' }, { field: 'lo', format: '.4f', title: '95% low' },
            { field: 'hi', format: '.4f', title: '95% high' }, { field: 'n', title: 'seeds' },
          ],
        },
      },
    ],
  };
  return {
    id, title: `${METRICS[metric].title} against ${x ?? 'point'}`, note: 'Each point\'s mean over its seeds; the bars are its 95% interval (Student\'s t).',
    spec,
  };
}

/** Learning curves, one per point: the mean over seeds at each logged step and its 95% band; a point logged once is a dot. */
function curves(
  id: string, title: string, note: string, series: { point: string; seed: number; x: number; y: number }[], xTitle: string, yTitle: string,
): Chart {
  const byStep = new Map<string, { point: string; x: number; ys: number[] }>();
  for (const s of series) {
    const k = `${s.point}\n${s.x}`;
    byStep.set(k, { point: s.point, x: s.x, ys: [...(byStep.get(k)?.ys ?? []), s.y] });
  }
  const values = [...byStep.values()].map((v) => {
    const e = estimate(v.ys);
    return { point: v.point, x: v.x, mean: e.mean, lo: e.lo, hi: e.hi, n: e.n };
  });
  const color = { field: 'point', type: 'nominal' as const, title: null, legend: { symbolLimit: 50, labelLimit: 300 } };
  const x = { field: 'x', type: 'quantitative' as const, title: xTitle };
  const spec: TopLevelSpec = {
    width: 700, height: 300, data: { values },
    layer: [
      {
        mark: { type: 'area', opacity: 0.2 },
        encoding: { x, y: { field: 'lo', type: 'quantitative', title: yTitle, scale: { zero: false } }, y2: { field: 'hi' }, color },
      },
      { mark: { type: 'line', point: { size: 20 }, tooltip: true }, encoding: { x, y: { field: 'mean', type: 'quantitative' }, color } },
    ],
  };
  return { id, title, note, spec };
}

/** Every chart of the report, and a line for each measurement the sweep did not record. */
export function sweepCharts(dir: string, rows: ResultRow[], keys: string[], points: PointSummary[]): { charts: Chart[]; missing: string[] } {
  const ok = rows.filter((r) => r.status === 'ok');
  const labelOf = (r: ResultRow) => pointLabel(r.vary, keys);
  const records = new Map(ok.map((r) => [r.point, trainingRecords(join(dir, 'runs', r.point))]));
  const evals = (r: ResultRow) => evalRecords(join(dir, 'runs', r.point));
  const at = (step: number, ms: number | null) => (ms !== null ? (step * ms) / 1000 : undefined); // no time known: no x
  const valSeries = ok.flatMap((r) => evals(r).map((e) => ({
    point: labelOf(r), seed: r.seed, step: e.step, y: e.val_ce, seconds: at(e.step, r.step_ms), projected: at(e.step, r.projected_step_ms),
  })));
  const recorded = recordedColumns(points);
  const charts: Chart[] = [
    curves(
      'loss', 'Training loss against step, every point', 'Mean over seeds and its 95% band (ce + auxiliary losses).',
      ok.flatMap((r) => (records.get(r.point) ?? []).map((m) => ({ point: labelOf(r), seed: r.seed, x: m.step, y: m.loss }))), 'step', 'training loss',
    ),
  ];
  // routing over training: drops and the busiest expert's load, mean over Switch layers at each logged step (MoE points only)
  const layerMean = (f: (l: { drop_fraction: number; load_max_over_mean: number }) => number) => ok.flatMap((r) => (records.get(r.point) ?? [])
    .filter((m) => (m.layers?.length ?? 0) > 0 && m.layers![0]!.tokens_per_expert.length > 1)
    .map((m) => ({ point: labelOf(r), seed: r.seed, x: m.step, y: m.layers!.reduce((a, l) => a + f(l), 0) / m.layers!.length })));
  const drops = layerMean((l) => l.drop_fraction);
  if (drops.length > 0) {
    charts.push(curves(
      'drops_steps', 'Drop fraction over training',
      'Token-choices dropped over capacity at each logged step, mean over Switch layers; mean over seeds and its 95% band.', drops, 'step', 'drop fraction',
    ));
    const loadNote = 'The busiest expert\'s kept token-choices (all k, after capacity drops) over the mean, at each logged step, '
      + 'mean over Switch layers; mean over seeds and its 95% band (metrics.jsonl\'s load_max_over_mean_first is the '
      + 'first-choice figure, before drops).';
    const busiest = layerMean((l) => l.load_max_over_mean);
    charts.push(curves('load_steps', 'Load imbalance over training', loadNote, busiest, 'step', 'load: busiest expert\'s kept over mean'));
  }
  if (valSeries.length > 0) {
    charts.push(curves(
      'val_steps', 'Validation loss against step', 'Mean over seeds and its 95% band, at every evaluation.', valSeries.map((v) => ({ ...v, x: v.step })),
      'step', 'validation cross-entropy',
    ));
    const timed = valSeries.filter((v) => v.seconds !== undefined); // a run whose training time is unknown is left out
    const hereNote = 'Each run\'s steps at its own mean step time on this machine (evaluation excluded); '
      + 'runs whose training time is unknown are left out.';
    if (timed.length > 0) {
      const here = timed.map((v) => ({ ...v, x: v.seconds! }));
      charts.push(curves('val_seconds', 'Validation loss against training time here', hereNote, here, 'seconds of training here', 'validation cross-entropy'));
    }
    if (valSeries.every((v) => v.projected !== undefined)) {
      charts.push(curves(
        'val_projected', 'Validation loss against projected training time', 'Each run\'s steps at its own projected step time (simulate, its own routing).',
        valSeries.map((v) => ({ ...v, x: v.projected! })), 'projected seconds of training', 'validation cross-entropy',
      ));
    }
  }
  const scale = axisKey(keys, ['moe.n_experts', 'parallel.devices', 'moe.top_k', 'moe.capacity_factor']);
  const forKey = (metric: MetricColumn, prefer: string[]) => axisKey(keys, prefer) ?? scale;
  const wanted: [MetricColumn, string[]][] = [
    ['val_ce', keys], ['train_ce', keys], ['drop_fraction', ['moe.capacity_factor', 'moe.drop_tokens']],
    ['tokens_per_s', ['parallel.devices', 'moe.n_experts', 'moe.top_k']],
    ['step_ms', ['parallel.devices', 'moe.capacity_factor', 'moe.top_k']], ['dispatch_overhead_fraction', ['parallel.devices', 'moe.n_experts']],
    ['projected_step_ms', ['moe.capacity_factor', 'moe.top_k', 'moe.n_experts']], ['load_max_over_mean', ['moe.n_experts', 'moe.capacity_factor']],
  ];
  const missing: string[] = [];
  for (const [metric, prefer] of wanted) {
    if (!recorded.includes(metric)) {
      missing.push(`${METRICS[metric].title}: not recorded by this sweep (${METRICS[metric].unrecorded}).`);
      continue;
    }
    if ((metric === 'val_ce' || metric === 'train_ce') && !keys.includes('label')) (keys.length > 0 ? keys : [undefined]).forEach((
      k, i,
    ) => charts.push(againstKey(
      `${metric}_${i}`, points, keys, k, metric,
    )));
    else if (metric === 'val_ce' || metric === 'train_ce') charts.push(againstKey(`${metric}_0`, points, keys, 'label', metric));
    else charts.push(againstKey(metric, points, keys, forKey(metric, prefer), metric));
  }
  const loads = ok.flatMap((r) => (records.get(r.point) ?? []).flatMap((m) => {
    const layers = m.layers ?? [];
    if (layers.length === 0) return [];
    const E = layers[0]!.tokens_per_expert.length;
    const total = layers.reduce((a, l) => a + l.tokens_per_expert.reduce((x, y) => x + y, 0), 0);
    return Array.from(
      { length: E },
      (_, e) => ({ point: r.point, step: m.step, expert: e, share: layers.reduce((a, l) => a + l.tokens_per_expert[e]!, 0) / Math.max(1, total) }),
    );
  }));
  const names = [...new Set(loads.map((l) => l.point))];
  if (names.length > 0) {
    charts.push({
      id: 'load', title: 'Per-expert load over steps', note: 'Each expert\'s share of the kept token-choices (all k, after capacity drops; all Switch layers); '
        + 'choose the run below the chart.',
      spec: {
        width: 700, height: 220, data: { values: loads },
        params: [{ name: 'point', value: names.at(-1)!, bind: { input: 'select', options: names, name: 'run ' } }],
        transform: [{ filter: 'datum.point === point' }],
        mark: { type: 'rect', tooltip: true },
        encoding: {
          x: { field: 'step', type: 'ordinal', title: 'step', axis: { labelOverlap: true } }, y: { field: 'expert', type: 'ordinal', title: 'expert' },
          color: { field: 'share', type: 'quantitative', title: 'share of kept token-choices', scale: { scheme: 'viridis' } },
        },
      },
    });
  }
  return { charts, missing };
}
