import { PerformanceObserver } from 'node:perf_hooks';
import type { Recorder, Span } from '../../core/instrument/recorder.js';

/** A garbage-collection pause of this thread, ms on performance.now()'s clock. */
export interface GcPause {
  ts: number;
  dur: number;
}

/**
 * Collects this thread's garbage-collection pauses until `stop`. V8 stops the thread for each: a pause
 * inside a phase would be counted as that phase's time, one between phases as time no phase claims
 * (a 5-15 ms scavenge in a ~50 ms step is 10-30% of it). Node stamps them on performance.now()'s clock.
 */
export function gcPauses(): { stop: () => GcPause[] } {
  const pauses: GcPause[] = [];
  const take = (entries: PerformanceEntry[]) =>
    entries.forEach((e) => pauses.push({ ts: e.startTime, dur: e.duration }));
  const observer = new PerformanceObserver((list) => take(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop: () => {
      take(observer.takeRecords()); // those not delivered yet
      observer.disconnect();
      return pauses;
    },
  };
}

/**
 * The pauses inside profiled steps as coordinator spans named `gc`, each with its step's number: the
 * analysis nests each inside the phase it interrupted (or directly under the step), so that the pause
 * is the collector's time, not that phase's, nor time no phase claims.
 */
export function addGcSpans(rec: Recorder, pauses: GcPause[]): void {
  const steps = rec.spans.filter((s) => s.lane.kind === 'coordinator' && s.name === 'step');
  for (const p of pauses) {
    const step = steps.find((s) => p.ts >= s.ts && p.ts + p.dur <= s.ts + s.dur);
    if (!step) continue;
    const span: Span = { name: 'gc', cat: 'gc', lane: { kind: 'coordinator' }, ts: p.ts, dur: p.dur, step: step.step };
    rec.spans.push(span);
  }
}
