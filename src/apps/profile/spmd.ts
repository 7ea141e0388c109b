import type { TopLevelSpec } from 'vega-lite';
import { htmlPage, type Chart, type Table } from '../../core/instrument/page.js';
import type { Recorder, Span } from '../../core/instrument/recorder.js';
import { splitWaits } from './wait-split.js';

/** Where an spmd device's profiled steps went, per step on average. */
export interface SpmdDeviceProfile {
  device: number;
  /** the dense model on its shard: stage forward and backward (router and gates included) */
  dense_ms: number;
  /** its experts' forward and backward on the rows from every source */
  expert_ms: number;
  /** packing its rows into the slots and reading its outputs back */
  pack_unpack_ms: number;
  /** waiting at barriers: the time lost to the slowest device (exchanges and the optimizer step) */
  barrier_wait_ms: number;
  /** of barrier_wait_ms, what uneven expert rows explain (the busiest device's extra rows, wait-split.ts) */
  wait_rows_ms: number;
  /** of barrier_wait_ms, the rest: devices running the same work at different speeds */
  wait_speed_ms: number;
  /** its share of the step */
  barrier_share: number;
  /** the dense gradients' all-reduce (its barrier waits included) */
  allreduce_ms: number;
  /** of allreduce_ms, waiting at its barrier (counted in barrier_wait_ms and wait_speed_ms too) */
  allreduce_wait_ms: number;
  optimizer_ms: number;
}

export interface SpmdProfile {
  steps: number[];
  step_ms: number;
  devices: SpmdDeviceProfile[];
  /**
   * [source][destination]: bytes of token rows one step's forward dispatch sends (the combine sends as many
   * back; backward the same again)
   */
  dispatch_bytes_per_step: number[][];
}

const onDevice = (s: Span, d: number) => s.lane.kind !== 'coordinator' && s.lane.device === d;

/** Averages over the profiled steps (those with a main-thread `step` span). */
export function analyseSpmd(rec: Recorder, devices: number): SpmdProfile {
  const stepSpans = rec.spans.filter((s) => s.lane.kind === 'coordinator' && s.name === 'step');
  const steps = stepSpans.map((s) => s.step);
  const n = Math.max(1, steps.length);
  const inSteps = new Set(steps);
  const spans = rec.spans.filter((s) => inSteps.has(s.step));
  const sum = (d: number, names: string[], lane?: 'device' | 'link') =>
    spans.filter((s) => onDevice(s, d) && names.includes(s.name) && (!lane || s.lane.kind === lane))
      .reduce((a, s) => a + s.dur, 0) / n;
  const stepMs = stepSpans.reduce((a, s) => a + s.dur, 0) / n;
  const split = splitWaits(spans, devices, n);
  const perDevice = Array.from({ length: devices }, (_, d): SpmdDeviceProfile => {
    const allreduceWait = spans.filter((s) => onDevice(s, d) && s.name === 'allreduce')
      .reduce((a, s) => a + Number(s.args?.barrier_wait_ms ?? 0), 0) / n;
    const barrier = sum(d, ['barrier_wait']) + allreduceWait;
    return {
      device: d,
      dense_ms: sum(d, ['stage_forward', 'stage_backward', 'router_softmax', 'routing_plan', 'combine_inputs',
        'expert_grads_out', 'combine_grads_in', 'grad_accumulate'], 'device'),
      expert_ms: sum(d, ['expert_forward', 'expert_backward']),
      pack_unpack_ms: sum(d, ['pack', 'unpack']),
      barrier_wait_ms: barrier,
      wait_rows_ms: split.rows_ms[d]!,
      wait_speed_ms: split.speed_ms[d]!,
      barrier_share: stepMs > 0 ? barrier / stepMs : 0,
      allreduce_ms: sum(d, ['allreduce']),
      allreduce_wait_ms: allreduceWait,
      optimizer_ms: sum(d, ['optimizer']),
    };
  });
  const bytes = Array.from({ length: devices }, () => new Array<number>(devices).fill(0));
  for (const t of rec.traffic)
    if (inSteps.has(t.step) && t.dir === 'fwd' && t.src !== undefined && t.dst !== undefined)
      bytes[t.src]![t.dst]! += t.bytesOut / n;
  return { steps, step_ms: stepMs, devices: perDevice, dispatch_bytes_per_step: bytes };
}

const COLUMNS = ['dense_ms', 'expert_ms', 'pack_unpack_ms', 'barrier_wait_ms', 'wait_rows_ms', 'wait_speed_ms',
  'allreduce_ms', 'optimizer_ms'] as const;
/**
 * The chart's stacked parts of each device's step, each millisecond once: the barrier waits as their two
 * causes, and the all-reduce without its barrier wait (which wait speed holds).
 */
export function stepParts(p: SpmdProfile): { device: string; part: string; ms: number }[] {
  return p.devices.flatMap((d) => [
    ['dense', d.dense_ms], ['expert', d.expert_ms], ['pack unpack', d.pack_unpack_ms], ['wait rows', d.wait_rows_ms],
    ['wait speed', d.wait_speed_ms], ['allreduce sum', d.allreduce_ms - d.allreduce_wait_ms],
    ['optimizer', d.optimizer_ms],
  ].map(([part, ms]) => ({ device: `device ${d.device}`, part: part as string, ms: ms as number })));
}

/** The page: where each device's step went (stacked bars) and who sent how much to whom. */
export function spmdPage(p: SpmdProfile, title: string, intro: string[]): string {
  const rows = stepParts(p);
  const chart: Chart = {
    id: 'devices', title: 'Where each device\'s step went (ms per step)',
    note: 'Barrier waits are time a device sat idle until the slowest one arrived, split into what the busiest ' +
      'device\'s extra expert rows explain (wait rows) and the rest (wait speed: the same work run at different ' +
      'speeds, and the all-reduce\'s own wait); the all-reduce sum bar is the all-reduce without that wait.',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 640, data: { values: rows },
      mark: 'bar', encoding: { y: { field: 'device', type: 'nominal' },
        x: { field: 'ms', type: 'quantitative', stack: 'zero' }, color: { field: 'part', type: 'nominal' },
        tooltip: [{ field: 'part' }, { field: 'ms', format: '.1f' }] },
    } as TopLevelSpec,
  };
  const tables: Table[] = [
    { title: 'Per device, ms per step', columns: ['device', ...COLUMNS, 'barrier share'],
      rows: p.devices.map((d) => [d.device, ...COLUMNS.map((c) => +d[c].toFixed(2)),
        `${(100 * d.barrier_share).toFixed(1)}%`]) },
    { title: 'Forward dispatch, KB per step, source → destination (the combine sends as much back; ' +
      'the backward pass the same again)', columns: ['from \\ to', ...p.devices.map((d) => `device ${d.device}`)],
      rows: p.dispatch_bytes_per_step.map((r, s) => [`device ${s}`, ...r.map((b) => +(b / 1024).toFixed(1))]) },
  ];
  return htmlPage({ title, intro, charts: [chart], tables });
}

/** The console table `switch-sim profile` prints for an spmd run. */
export function spmdTable(p: SpmdProfile): string {
  const w = (c: string) => c.length + 1; // each column as wide as its name, a space before it
  const head = `device${COLUMNS.map((c) => c.padStart(w(c))).join('')}  barrier share\n`;
  const body = p.devices.map((d) =>
    `${String(d.device).padEnd(6)}${COLUMNS.map((c) => d[c].toFixed(2).padStart(w(c))).join('')}  ` +
    `${(100 * d.barrier_share).toFixed(1).padStart(12)}%`).join('\n');
  const kb = p.dispatch_bytes_per_step.map((r, s) =>
    `  ${s} → ${r.map((b, q) => `${q}: ${(b / 1024).toFixed(1)} KB`).join(', ')}`).join('\n');
  return `${p.steps.length} profiled steps, ${p.step_ms.toFixed(1)} ms per step (main ` +
    `thread)\n${head}${body}\nforward dispatch per step, source → destination:\n${kb}\n`;
}
