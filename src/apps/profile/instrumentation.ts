import { Recorder } from '../../core/instrument/recorder.js';
import type { Recorded } from './record.js';

/** What profiling itself costs, measured in the same run. */
export interface Instrumentation {
  /** mean step time with the profiler off and on, over interleaved steps */
  step_ms_off: number;
  step_ms_on: number;
  measured_overhead_fraction: number;
  /** spans recorded per profiled step, what one costs (measured apart), and their share of a step */
  spans_per_step: number;
  ns_per_span: number;
  estimated_overhead_fraction: number;
}

/** What one recorded span costs: begin/end pairs on a scratch recorder. */
function nsPerSpan(): number {
  const r = new Recorder();
  const n = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    r.begin('x');
    r.end();
  }
  return ((performance.now() - t0) / n) * 1e6;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** The profiler's cost, measured in the run (interleaved steps) and estimated (spans × ns per span). */
export function instrumentation(rec: Recorder, steps: number[], times: Recorded['times']): Instrumentation {
  const onMs = mean(times.on);
  const offMs = mean(times.off);
  const inSteps = new Set(steps);
  // the recorder's spans
  const spansPerStep = rec.spans.filter((s) => inSteps.has(s.step) && s.cat !== 'gc').length
    / Math.max(1, steps.length);
  const ns = nsPerSpan();
  return {
    step_ms_off: offMs, step_ms_on: onMs, measured_overhead_fraction: offMs > 0 ? (onMs - offMs) / offMs : 0,
    spans_per_step: spansPerStep, ns_per_span: ns,
    estimated_overhead_fraction: (spansPerStep * ns) / 1e6 / Math.max(1e-9, onMs),
  };
}
