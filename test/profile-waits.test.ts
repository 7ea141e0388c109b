import test from 'ava';
import type { Span } from '../src/core/instrument/recorder.js';
import { splitWaits } from '../src/apps/profile/wait-split.js';
import { stepParts } from '../src/apps/profile/spmd.js';

// Hand-worked spans of two spmd devices over two profiled steps (wait-split.ts's formula).
const link = (device: number) => ({ kind: 'link', device }) as const;
const span = (device: number, name: string, ts: number, dur: number, at: Partial<Span>,
  args?: Record<string, unknown>): Span =>
  ({ name, cat: 'wait', lane: link(device), ts, dur, step: 5, ...at, ...(args ? { args } : {}) });

/** one exchange: per device its experts' rows and ms, and its two barrier waits (first, second) */
function exchange(at: Partial<Span>, rows: number[], ms: number[], waits: [number, number][]): Span[] {
  return rows.flatMap((_, d) => [
    span(d, 'barrier_wait', 0, waits[d]![0], at),
    span(d, at.dir === 'fwd' ? 'expert_forward' : 'expert_backward', 1, ms[d]!, at, { rows: rows[d] }),
    span(d, 'barrier_wait', 10, waits[d]![1], at),
  ]);
}

test('barrier waits split into what uneven expert rows explain and the rest, by hand', (t) => {
  const spans: Span[] = [
    // ρ = (6 + 2) / (300 + 100) = 0.02 ms a row; the busiest rows take 300·ρ = 6, device 1's 2: 4 ms
    // explained, of its 5 ms second wait; its first wait (1) and the remaining 1 are speed
    ...exchange({ step: 5, layer: 0, dir: 'fwd' }, [300, 100], [6, 2], [[0.5, 0.2], [1, 5]]),
    // the same rows, device 1 waited only 3 ms at the second barrier: the rows explain all 3 (never more than
    // it waited)
    ...exchange({ step: 5, layer: 0, dir: 'bwd' }, [300, 100], [6, 2], [[0.1, 0.3], [0.5, 3]]),
    // even rows, one device twice as slow: nothing is the rows' doing
    ...exchange({ step: 6, layer: 1, dir: 'fwd' }, [200, 200], [6, 3], [[0, 0], [0.25, 2.75]]),
    // the all-reduce's barrier wait is speed; a coordinator span of that name is not a device's
    { name: 'allreduce', cat: 'comm', lane: link(0), ts: 20, dur: 2, step: 5, args: { barrier_wait_ms: 1.5 } },
    { name: 'barrier_wait', cat: 'wait', lane: { kind: 'coordinator' }, ts: 0, dur: 50, step: 5, layer: 0, dir: 'fwd' },
  ];
  const split = splitWaits(spans, 2, 2);
  // device 0 had the most rows: every wait is speed, (0.7 + 0.4 + 0 + 1.5) / 2 steps
  t.is(split.rows_ms[0], 0);
  t.true(Math.abs(split.speed_ms[0]! - 1.3) < 1e-12, `${split.speed_ms[0]}`);
  // device 1: rows (4 + 3 + 0) / 2, speed (1 + 1 + 0.5 + 0 + 3) / 2
  t.true(Math.abs(split.rows_ms[1]! - 3.5) < 1e-12, `${split.rows_ms[1]}`);
  t.true(Math.abs(split.speed_ms[1]! - 2.75) < 1e-12, `${split.speed_ms[1]}`);
});

test('an exchange where no expert got a row explains nothing by rows', (t) => {
  const split = splitWaits(exchange({ step: 1, layer: 0, dir: 'fwd' }, [0, 0], [0, 0], [[1, 2], [3, 4]]), 2, 1);
  t.deepEqual(split, { rows_ms: [0, 0], speed_ms: [3, 7] });
});

test('three devices, waits listed out of order, and a wait outside any exchange', (t) => {
  // ρ = (1 + 2 + 4) / (100 + 200 + 400) = 0.01; the busiest rows take 4 ms: device 0's take 1 (3 explained of
  // its 3 ms second wait), device 1's 2 (2 of 2), device 2's 4 (none of its 0.5)
  const spans = exchange({ step: 1, layer: 0, dir: 'bwd' }, [100, 200, 400], [1, 2, 4], [[0.5, 3], [1, 2], [0, 0.5]])
    .reverse();
  // a barrier wait with no layer is nobody's rows: speed (so the parts still add up to every wait)
  spans.push(span(2, 'barrier_wait', 30, 0.25, { step: 1 }));
  const split = splitWaits(spans, 3, 1);
  t.deepEqual(split.rows_ms.map((v) => +v.toFixed(12)), [3, 2, 0]);
  t.deepEqual(split.speed_ms.map((v) => +v.toFixed(12)), [0.5, 1, 0.75]);
});

test("the page's stacked parts count each millisecond once: the all-reduce's wait only in wait speed", (t) => {
  const device = { device: 0, dense_ms: 10, expert_ms: 4, pack_unpack_ms: 1, barrier_wait_ms: 3, wait_rows_ms: 0.5,
    wait_speed_ms: 2.5, barrier_share: 0.1, allreduce_ms: 2, allreduce_wait_ms: 1.5, optimizer_ms: 0.75 };
  const parts = stepParts({ steps: [1], step_ms: 30, devices: [device], dispatch_bytes_per_step: [[0]] });
  t.deepEqual(Object.fromEntries(parts.map((p) => [p.part, p.ms])), { 'dense': 10, 'expert': 4, 'pack unpack': 1,
    'wait rows': 0.5, 'wait speed': 2.5, 'allreduce sum': 0.5, 'optimizer': 0.75 });
  // 10 + 4 + 1 + 3 (the waits) + 0.5 + 0.75, not 1.5 more
  t.is(parts.reduce((a, p) => a + p.ms, 0), 19.25);
});
