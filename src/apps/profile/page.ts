import type { TopLevelSpec } from 'vega-lite';
import { htmlPage, type Chart } from '../../core/instrument/page.js';
import { nest, phaseLabel, type ProfileAnalysis, type SpanNode } from './analysis.js';
import type { Recorder, Span } from '../../core/instrument/recorder.js';

const laneName = (s: Span) =>
  s.lane.kind === 'coordinator' ? 'coordinator' : s.lane.kind === 'device' ? `device ${s.lane.device}`
    : `device ${s.lane.device} link`;

/**
 * The spans of the last `n` profiled steps, as timeline rows: the coordinator's innermost phases, every
 * device's work and messages.
 */
export function timelineRows(rec: Recorder, steps: number[], n = 2): Record<string, unknown>[] {
  const last = new Set(steps.slice(-n));
  const coord = nest(rec.spans.filter((s) => s.lane.kind === 'coordinator' && last.has(s.step)));
  const leaves: Span[] = [];
  const visit = (node: SpanNode) =>
    (node.children.length === 0 ? leaves.push(node.span) : node.children.forEach(visit));
  coord.filter((r) => r.span.name === 'step').forEach((r) => r.children.forEach(visit));
  // the steps side by side, 2% of a step apart (profiled steps alternate with unprofiled ones)
  const windows = coord.filter((r) => r.span.name === 'step').sort((a, b) => a.span.ts - b.span.ts)
    .map((r) => [r.span.ts, r.span.ts + r.span.dur] as const);
  const shift: number[] = [];
  windows.forEach(([a, b], i) => (shift[i] = i === 0 ? a : a - (windows[i - 1]![1] - shift[i - 1]! + 0.02 * (b - a))));
  const slot = (s: Span) => windows.findIndex(([a, b]) => s.ts < b && s.ts + s.dur > a);
  const others = rec.spans.filter((s) => s.lane.kind !== 'coordinator' && slot(s) >= 0);
  return [...leaves, ...others].map((s) => {
    const at = shift[slot(s)]!;
    return {
      lane: laneName(s), phase: phaseLabel(s), group: phaseGroup(s.name), start: s.ts - at, end: s.ts + s.dur - at,
      ms: s.dur, step: s.step, layer: s.layer ?? '', micro: s.micro ?? '',
    };
  });
}

const GROUPS: Record<string, string[]> = {
  'dense model': ['embed', 'ln1', 'attention', 'ln2', 'dense_ffn', 'ln_f', 'loss', 'stage_forward', 'stage_backward',
    'backward_other', 'grad_accumulate', 'refresh_weights'],
  'router and gates': ['router_logits', 'router_softmax', 'routing_plan', 'combine_inputs', 'combine', 'aux_losses',
    'expert_grads_out', 'combine_grads_in'],
  'moving tokens': ['pack', 'unpack', 'device_calls', 'device_queue', 'signal', 'reply'],
  'waiting on devices': ['wait'],
  'expert compute': ['expert_forward', 'expert_backward'],
  'optimizer and norm': ['optimizer', 'grad_norm'],
  'garbage collection': ['gc'],
};

/** A few colours for the timeline: what kind of work a phase is. */
export function phaseGroup(name: string): string {
  for (const [group, names] of Object.entries(GROUPS)) if (names.includes(name)) return group;
  return 'bookkeeping';
}

export function profileCharts(rec: Recorder, a: ProfileAnalysis, devices: number): Chart[] {
  const lanes = ['coordinator', ...Array.from({ length: devices }, (_, d) => [`device ${d}`, `device ${d} link`])
    .flat()];
  const rows = timelineRows(rec, a.steps);
  const timeline: TopLevelSpec = {
    width: 1000, height: 40 * lanes.length,
    data: { values: rows },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'lane', type: 'nominal', sort: lanes, title: null },
      x: { field: 'start', type: 'quantitative', title: 'ms (the two steps side by side)' },
      x2: { field: 'end' },
      color: { field: 'group', type: 'nominal', title: 'work', scale: { scheme: 'tableau10' } },
      tooltip: [{ field: 'lane' }, { field: 'phase' }, { field: 'ms', format: '.3f' }, { field: 'step' },
        { field: 'layer' }, { field: 'micro' }],
    },
  };
  const split = [
    { bar: 'critical path', part: 'coordinator compute', ms: a.split.coordinator_compute_ms },
    { bar: 'critical path', part: 'dispatch overhead', ms: a.split.dispatch_overhead_ms },
    { bar: 'critical path', part: 'exposed expert compute', ms: a.split.exposed_expert_ms },
    ...a.phases.filter((p) => p.where === 'coordinator')
      .map((p) => ({ bar: 'coordinator phases', part: p.phase, ms: p.mean_ms })),
  ];
  const where: TopLevelSpec = {
    width: 1000, height: 90,
    data: { values: split },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'bar', type: 'nominal', title: null, sort: ['critical path', 'coordinator phases'] },
      x: { field: 'ms', type: 'quantitative', aggregate: 'sum', stack: 'zero',
        title: 'ms per step (mean over the profiled steps)' },
      color: { field: 'part', type: 'nominal', scale: { scheme: 'tableau20' },
        legend: { columns: 3, symbolLimit: 60 } },
      order: { field: 'ms', type: 'quantitative', sort: 'descending' },
      tooltip: [{ field: 'bar' }, { field: 'part' }, { field: 'ms', format: '.3f' }],
    },
  };
  const use = a.devices.flatMap((d) => [
    { device: `device ${d.device}`, state: 'busy', ms: d.busy_ms_per_step },
    { device: `device ${d.device}`, state: 'idle', ms: Math.max(0, d.idle_ms_per_step) },
  ]);
  const busy: TopLevelSpec = {
    width: 600, height: 30 * Math.max(1, devices),
    data: { values: use },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'device', type: 'nominal', title: null },
      x: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'ms per step' },
      color: { field: 'state', type: 'nominal', scale: { domain: ['busy', 'idle'], range: ['#4c78a8', '#d9d9d9'] } },
      tooltip: [{ field: 'device' }, { field: 'state' }, { field: 'ms', format: '.3f' }],
    },
  };
  return [
    { id: 'timeline', title: 'Timeline of the last two profiled steps',
      note: 'The coordinator\'s innermost phases; each device\'s work (compute) and its messages (link: queue, ' +
        'signal, reply). Hover a bar for its phase.', spec: timeline },
    { id: 'where', title: 'Where a step\'s time goes',
      note: 'Top: the critical path, split into the coordinator computing, moving tokens (pack, unpack, waiting ' +
        'while no device computes) and waiting on expert compute. Bottom: the coordinator\'s phases, self time.',
        spec: where },
    { id: 'devices', title: 'Per-device busy and idle time',
      note: 'Busy: expert forward and backward, optimizer step, gradient norm.', spec: busy },
  ];
}

export function profilePage(rec: Recorder, a: ProfileAnalysis, devices: number, title: string,
  intro: string[]): string {
  return htmlPage({
    title, intro, charts: profileCharts(rec, a, devices),
    tables: [{
      title: 'Phases (ms per step)',
      columns: ['phase', 'where', 'mean', 'p50', 'p95', '% of step'],
      rows: a.phases.map((p) => [p.phase, p.where === 'coordinator' ? p.where : `${p.where} (mean over devices)`,
        p.mean_ms, p.p50_ms, p.p95_ms, (100 * p.mean_ms) / a.split.step_ms]),
    }],
  });
}
