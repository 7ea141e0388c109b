import tf from '../util/tfjs.cjs';

/**
 * The profiler's recorder. `PROFILE` is null unless a profiled step is running: every instrumented
 * site reads `PROFILE?.begin(...)` / `PROFILE?.end()`, which with profiling off is one null check: no
 * allocation, no timestamp. Times are milliseconds on the coordinator's clock (`performance.now()`);
 * device times arrive as absolute epoch milliseconds and are converted with `fromAbsolute`.
 */
export let PROFILE: Recorder | null = null;

export function setProfile(r: Recorder | null): void {
  PROFILE = r;
}

/** Absolute time (epoch ms, sub-ms resolution), comparable across threads. */
export const absoluteNow = () => performance.timeOrigin + performance.now();

/** Where a span ran: the coordinator, a device's compute thread, or a device's link (messages in flight). */
export type Lane = { kind: 'coordinator' } | { kind: 'device'; device: number } | { kind: 'link'; device: number };

export interface Span {
  name: string;
  /** compute | comm | wait | device | optimizer | io */
  cat: string;
  lane: Lane;
  /** start and duration, ms on the coordinator's clock */
  ts: number;
  dur: number;
  step: number;
  micro?: number;
  layer?: number;
  block?: number;
  dir?: 'fwd' | 'bwd';
  /** links a dispatch to its device compute and its combine (trace flow events) */
  flow?: number;
  flowPhase?: 's' | 't' | 'f';
  /** extra fields for the trace event (spmd: the bytes a pack sent to each device) */
  args?: Record<string, unknown>;
}

/** Slot bytes one exchange moved: rows out to the devices and back. */
export interface Traffic {
  step: number;
  /** when the exchange was posted (coordinator clock): evaluation's exchanges fall outside the steps */
  ts: number;
  layer: number;
  dir: 'fwd' | 'bwd';
  bytesOut: number;
  bytesBack: number;
  /** spmd: the device that sent the rows and the one that owns their experts (absent: coordinator ↔ all devices) */
  src?: number;
  dst?: number;
}

/** A label over tape nodes [from, to) recorded by one phase, so that its backward can be timed apart. */
export interface TapeLabel {
  from: number;
  to: number;
  name: string;
  block?: number;
}

interface Open {
  name: string;
  cat: string;
  ts: number;
  block?: number;
  tapeFrom: number;
}

const COORDINATOR: Lane = { kind: 'coordinator' };

interface EngineState {
  state: { activeTape: unknown[] | null };
}

export class Recorder {
  readonly spans: Span[] = [];
  readonly traffic: Traffic[] = [];
  /** per device: its clock's offset from the coordinator's (ms), measured at start-up */
  readonly offsets: number[] = [];
  /** per device: when (coordinator clock) it finished its last piece of work, to tell queueing from signalling */
  readonly deviceFree: number[] = [];
  private readonly open: Open[] = [];
  private labels: TapeLabel[] | undefined;
  private nextFlow = 1;
  /** the context new spans get */
  step = 0;
  micro?: number;
  layer?: number;
  dir?: 'fwd' | 'bwd';

  now(): number {
    return performance.now();
  }

  /** A device's absolute time on the coordinator's clock. */
  fromAbsolute(abs: number, device?: number): number {
    return abs - performance.timeOrigin - (device === undefined ? 0 : this.offsets[device] ?? 0);
  }

  at(micro: number | undefined, layer: number | undefined, dir: 'fwd' | 'bwd' | undefined): void {
    this.micro = micro;
    this.layer = layer;
    this.dir = dir;
  }

  /** Opens a coordinator span; spans nest, so end() closes the innermost. */
  begin(name: string, cat = 'compute', block?: number): void {
    const tape = (tf.engine() as unknown as EngineState).state.activeTape;
    this.open.push({ name, cat, ts: performance.now(), block, tapeFrom: tape ? tape.length : -1 });
  }

  end(): void {
    const o = this.open.pop();
    if (!o) throw new Error('profiler: end() without begin()');
    const t = performance.now();
    this.add({ name: o.name, cat: o.cat, lane: COORDINATOR, ts: o.ts, dur: t - o.ts, block: o.block });
    const tape = (tf.engine() as unknown as EngineState).state.activeTape;
    if (this.labels && tape && o.tapeFrom >= 0 && tape.length > o.tapeFrom)
      this.labels.push({ from: o.tapeFrom, to: tape.length, name: o.name, block: o.block });
  }

  /** A span with explicit times (device work, messages, backward ranges), in the current context. */
  add(s: Omit<Span, 'step' | 'micro' | 'layer' | 'dir'> & Partial<Pick<Span, 'micro' | 'layer' | 'dir'>>): Span {
    const span: Span = { step: this.step, micro: this.micro, layer: this.layer, dir: this.dir, ...s };
    this.spans.push(span);
    return span;
  }

  /** Starts collecting tape labels for a recording; returns them when the recording ends. */
  startLabels(): void {
    this.labels = [];
  }

  takeLabels(): TapeLabel[] | undefined {
    const l = this.labels;
    this.labels = undefined;
    return l;
  }

  flowId(): number {
    return this.nextFlow++;
  }

  addTraffic(t: Omit<Traffic, 'step'>): void {
    this.traffic.push({ step: this.step, ...t });
  }
}
