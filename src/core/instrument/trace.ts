import type { Lane, Recorder, Span } from './recorder.js';
import { minOf } from '../util/extremes.js';

/**
 * Chrome trace event format (the JSON that Perfetto and chrome://tracing open): complete events
 * (`ph: "X"`, `ts`/`dur` in µs from the first recorded span), one process for the coordinator and
 * one per device (threads: `compute` and `link`, the messages in flight), names as metadata events,
 * and flow events (`s` → `t` → `f`) from each dispatch's pack through the devices' compute to its unpack.
 */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'M' | 's' | 't' | 'f';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  id?: number;
  bp?: 'e';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
}

/** pid 1: coordinator; pid 2 + d: device d (tid 1 compute, tids 2.. its messages in flight). */
export function where(lane: Lane): { pid: number; tid: number } {
  if (lane.kind === 'coordinator') return { pid: 1, tid: 1 };
  return { pid: 2 + lane.device, tid: lane.kind === 'device' ? 1 : 2 };
}

/**
 * Messages of different exchanges can be in flight at once (a micro-batch's request queues while
 * the previous one's reply travels), and events of one trace thread must nest: each message goes to
 * the first link thread that is free by then (interval colouring), so every thread stays well formed.
 */
function linkThreads(spans: Span[]): Map<Span, number> {
  const tid = new Map<Span, number>();
  const freeAt = new Map<number, number[]>(); // per device: when each link thread is free
  for (const s of [...spans].filter((x) => x.lane.kind === 'link').sort((a, b) => a.ts - b.ts)) {
    const d = (s.lane as { device: number }).device;
    const threads = freeAt.get(d) ?? [];
    let i = threads.findIndex((t) => t <= s.ts);
    if (i < 0) i = threads.push(0) - 1;
    threads[i] = s.ts + s.dur;
    freeAt.set(d, threads);
    tid.set(s, 2 + i);
  }
  return tid;
}

const us = (ms: number) => Math.round(ms * 1000 * 1000) / 1000; // µs, to the nanosecond

export function toChromeTrace(rec: Recorder, devices: number, otherData: Record<string, unknown> = {},
  spans: Span[] = rec.spans): ChromeTrace {
  const t0 = minOf(spans.map((s) => s.ts));
  const meta: TraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: 1, tid: 1, args: { name: 'coordinator' } },
    { name: 'process_sort_index', ph: 'M', pid: 1, tid: 1, args: { sort_index: 0 } },
    { name: 'thread_name', ph: 'M', pid: 1, tid: 1, args: { name: 'main' } },
  ];
  const links = linkThreads(spans);
  for (let d = 0; d < devices; d++) {
    meta.push(
      { name: 'process_name', ph: 'M', pid: 2 + d, tid: 1, args: { name: `device ${d}` } },
      { name: 'process_sort_index', ph: 'M', pid: 2 + d, tid: 1, args: { sort_index: 1 + d } },
      { name: 'thread_name', ph: 'M', pid: 2 + d, tid: 1, args: { name: 'compute' } },
    );
    const tids = new Set([...links].filter(([s]) => (s.lane as { device: number }).device === d).map(([, t]) => t));
    for (const t of [...tids].sort())
      meta.push({ name: 'thread_name', ph: 'M', pid: 2 + d, tid: t, args: { name: `link ${t - 1}` } });
  }
  const events: TraceEvent[] = [];
  for (const s of spans) {
    const pid = where(s.lane).pid;
    const tid = links.get(s) ?? where(s.lane).tid;
    const args: Record<string, unknown> = { step: s.step };
    for (const k of ['micro', 'layer', 'block', 'dir'] as const) if (s[k] !== undefined) args[k] = s[k];
    Object.assign(args, s.args);
    events.push({ name: s.name, cat: s.cat, ph: 'X', pid, tid, ts: us(s.ts - t0), dur: us(s.dur), args });
    if (s.flow !== undefined && s.flowPhase) {
      // a flow event binds to the slice around its timestamp: put it in the middle of this one
      events.push({ name: 'exchange', cat: 'flow', ph: s.flowPhase, id: s.flow, pid, tid,
        ts: us(s.ts - t0 + s.dur / 2), ...(s.flowPhase === 'f' ? { bp: 'e' as const } : {}) });
    }
  }
  events.sort((a, b) => a.ts! - b.ts! || (b.dur ?? 0) - (a.dur ?? 0));
  return { traceEvents: [...meta, ...events], displayTimeUnit: 'ms', otherData };
}
