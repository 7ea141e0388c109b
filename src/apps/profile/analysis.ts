import { length, overlap, percentile, subtract, union, type Interval } from '../../core/instrument/intervals.js';
import type { Recorder, Span } from '../../core/instrument/recorder.js';

/** A span with the spans it contains; `self` is its time not covered by them. */
export interface SpanNode {
  span: Span;
  children: SpanNode[];
  self: number;
}

const EPS = 1e-3;
const end = (s: Span) => s.ts + s.dur;

/** Nests one thread's spans by time containment (a span inside another is its child). */
export function nest(spans: Span[]): SpanNode[] {
  const sorted = [...spans].sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const roots: SpanNode[] = [];
  const stack: SpanNode[] = [];
  for (const span of sorted) {
    const node: SpanNode = { span, children: [], self: span.dur };
    while (stack.length > 0 && !(span.ts >= stack.at(-1)!.span.ts - EPS && end(span) <= end(stack.at(-1)!.span) + EPS))
      stack.pop();
    const parent = stack.at(-1);
    if (parent) {
      parent.children.push(node);
      parent.self -= span.dur;
    } else roots.push(node);
    stack.push(node);
  }
  const clamp = (n: SpanNode) => {
    n.self = Math.max(0, n.self);
    n.children.forEach(clamp);
  };
  roots.forEach(clamp);
  return roots;
}

const walk = (n: SpanNode, f: (n: SpanNode) => void) => {
  f(n);
  n.children.forEach((c) => walk(c, f));
};

/** How a phase is named in tables: backward and forward halves apart. */
export const phaseLabel = (s: Span) => (s.dir ? `${s.name} ${s.dir}` : s.name);

export interface Stats {
  total_ms: number;
  /** per profiled step */
  mean_ms: number;
  p50_ms: number;
  p95_ms: number;
}

export interface PhaseStats extends Stats {
  phase: string;
  /**
   * coordinator (self time), device (the mean over devices: what one device spends on it a step) or
   * link (messages in flight, the mean over devices); each device's own figures are in `devices[].phases`
   */
  where: 'coordinator' | 'device' | 'link';
  cat: string;
}

/** One step cut along the coordinator's critical path: the three parts add up to the step. */
export interface CriticalPath {
  step: number;
  step_ms: number;
  /** the coordinator computing (everything but moving tokens and waiting) */
  coordinator_compute_ms: number;
  /** pack + unpack + the waiting during which no device was computing */
  dispatch_overhead_ms: number;
  /** waiting while a device was computing (expert forward/backward, optimizer, gradient norm) */
  exposed_expert_ms: number;
  pack_ms: number;
  unpack_ms: number;
  /** the coordinator blocked on devices (await, or in-thread device calls) */
  blocked_ms: number;
  /** step time no phase claims (instrumentation coverage) */
  unattributed_ms: number;
}

export interface DeviceUse {
  device: number;
  busy_ms_per_step: number;
  idle_ms_per_step: number;
  busy_fraction: number;
  /** per device phase, ms per step */
  phases: Record<string, number>;
}

export interface ProfileAnalysis {
  steps: number[];
  step_ms: Stats;
  phases: PhaseStats[];
  critical_path: CriticalPath[];
  /** means over the profiled steps */
  split: { coordinator_compute_ms: number; dispatch_overhead_ms: number; exposed_expert_ms: number; step_ms: number };
  dispatch_overhead: { ms_per_step: number; fraction: number };
  bytes: { layer: number; dir: 'fwd' | 'bwd'; bytes_out_per_step: number; bytes_back_per_step: number }[];
  devices: DeviceUse[];
  /** spans outside any step (the final evaluation and checkpoint), ms */
  outside_steps: Record<string, number>;
}

function stats(perStep: number[]): Stats {
  const total = perStep.reduce((a, b) => a + b, 0);
  return { total_ms: total, mean_ms: total / Math.max(1, perStep.length), p50_ms: percentile(perStep, 50),
    p95_ms: percentile(perStep, 95) };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Turns the recorder's spans into profile.json's figures. */
export function analyse(rec: Recorder, devices: number): ProfileAnalysis {
  const coord = rec.spans.filter((s) => s.lane.kind === 'coordinator');
  const roots = nest(coord);
  const stepRoots = roots.filter((n) => n.span.name === 'step');
  const steps = stepRoots.map((n) => n.span.step);
  const phaseSteps = new Map<string, { where: PhaseStats['where']; cat: string; perStep: Map<number, number> }>();
  const bump = (label: string, where: PhaseStats['where'], cat: string, step: number, ms: number) => {
    const p = phaseSteps.get(`${where}/${label}`) ?? { where, cat, perStep: new Map() };
    p.perStep.set(step, (p.perStep.get(step) ?? 0) + ms);
    phaseSteps.set(`${where}/${label}`, p);
  };
  const critical: CriticalPath[] = [];
  const deviceBusy: number[][] = Array.from({ length: devices }, () => []);
  const devicePhases: Record<string, number>[] = Array.from({ length: devices }, () => ({}));
  for (const root of stepRoots) {
    const s = root.span;
    const window: Interval = [s.ts, end(s)];
    let pack = 0;
    let unpack = 0;
    const blocked: Interval[] = [];
    walk(root, (n) => {
      if (n !== root) bump(phaseLabel(n.span), 'coordinator', n.span.cat, s.step, n.self);
      if (n.span.name === 'pack') pack += n.span.dur;
      if (n.span.name === 'unpack') unpack += n.span.dur;
      if (n.span.name === 'wait')
        blocked.push(...subtract([n.span.ts, end(n.span)],
          n.children.map((c) => [c.span.ts, end(c.span)] as Interval)));
      if (n.span.name === 'device_calls') blocked.push([n.span.ts, end(n.span)]);
    });
    const inStep = (x: Span) => x.ts < window[1] && end(x) > window[0];
    const clip = (x: Span): Interval => [Math.max(x.ts, window[0]), Math.min(end(x), window[1])];
    const busyAll: Interval[] = [];
    for (let d = 0; d < devices; d++) {
      const mine = rec.spans.filter((x) => x.lane.kind === 'device' && x.lane.device === d && inStep(x));
      const busy = union(mine.map(clip));
      deviceBusy[d]!.push(length(busy));
      busyAll.push(...busy);
      for (const x of mine) {
        bump(x.name, 'device', x.cat, s.step, (clip(x)[1] - clip(x)[0]) / devices);
        devicePhases[d]![x.name] = (devicePhases[d]![x.name] ?? 0) + (clip(x)[1] - clip(x)[0]) / stepRoots.length;
      }
    }
    for (const x of rec.spans)
      if (x.lane.kind === 'link' && inStep(x)) bump(x.name, 'link', x.cat, s.step, (clip(x)[1] - clip(x)[0]) / devices);
    const blockedU = union(blocked);
    const idle = length(blockedU);
    const exposed = overlap(blockedU, union(busyAll));
    critical.push({
      step: s.step, step_ms: s.dur,
      coordinator_compute_ms: s.dur - pack - unpack - idle,
      dispatch_overhead_ms: pack + unpack + idle - exposed,
      exposed_expert_ms: exposed,
      pack_ms: pack, unpack_ms: unpack, blocked_ms: idle, unattributed_ms: root.self,
    });
  }
  const phases: PhaseStats[] = [...phaseSteps].map(([key, p]) => ({
    phase: key.slice(key.indexOf('/') + 1), where: p.where, cat: p.cat,
    ...stats(steps.map((st) => p.perStep.get(st) ?? 0)),
  })).sort((a, b) => b.total_ms - a.total_ms);
  const stepMs = critical.map((c) => c.step_ms);
  const split = {
    coordinator_compute_ms: mean(critical.map((c) => c.coordinator_compute_ms)),
    dispatch_overhead_ms: mean(critical.map((c) => c.dispatch_overhead_ms)),
    exposed_expert_ms: mean(critical.map((c) => c.exposed_expert_ms)),
    step_ms: mean(stepMs),
  };
  const bytes = new Map<string, { layer: number; dir: 'fwd' | 'bwd'; out: number; back: number }>();
  const windows = stepRoots.map((n) => [n.span.ts, end(n.span)] as Interval);
  for (const t of rec.traffic) {
    if (!windows.some(([a, b]) => t.ts >= a && t.ts <= b)) continue; // exchanges of the steps, not of evaluation
    const b = bytes.get(`${t.layer}/${t.dir}`) ?? { layer: t.layer, dir: t.dir, out: 0, back: 0 };
    b.out += t.bytesOut / steps.length;
    b.back += t.bytesBack / steps.length;
    bytes.set(`${t.layer}/${t.dir}`, b);
  }
  const outside: Record<string, number> = {};
  for (const n of roots) if (n.span.name !== 'step') outside[n.span.name] = (outside[n.span.name] ?? 0) + n.span.dur;
  return {
    steps,
    step_ms: stats(stepMs),
    phases,
    critical_path: critical,
    split,
    dispatch_overhead: { ms_per_step: split.dispatch_overhead_ms,
      fraction: split.step_ms > 0 ? split.dispatch_overhead_ms / split.step_ms : 0 },
    bytes: [...bytes.values()].sort((a, b) => a.layer - b.layer || a.dir.localeCompare(b.dir))
      .map((b) => ({ layer: b.layer, dir: b.dir, bytes_out_per_step: b.out, bytes_back_per_step: b.back })),
    devices: deviceBusy.map((busy, d) => {
      const b = mean(busy);
      return { device: d, busy_ms_per_step: b, idle_ms_per_step: split.step_ms - b,
        busy_fraction: split.step_ms > 0 ? b / split.step_ms : 0, phases: devicePhases[d]! };
    }),
    outside_steps: outside,
  };
}
