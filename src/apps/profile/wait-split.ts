import type { Span } from '../../core/instrument/recorder.js';

/**
 * Why an spmd device waited at barriers, per device and step on average: the part that uneven expert rows
 * explain, and the rest (the same work run at different speeds: a straggling core, a garbage collection,
 * another process on the machine).
 *
 * An exchange (step, micro-batch, Switch layer, direction) has two barriers per device: the first after
 * packing (every device did the same dense work on an equal shard before it, so a wait there is speed), the
 * second after its experts' compute. At the second, with r_d rows on device d and its experts taking c_d ms,
 * the rows explain
 *   rows_wait_d = min(wait_d, max_q r_q·ρ − r_d·ρ),   ρ = Σ_q c_q / Σ_q r_q  (ms per row over the devices)
 * i.e. how much longer the busiest device's rows take than d's at the exchange's common rate; the rest of
 * that wait, the first barrier's and the all-reduce's, is speed (which so also holds a device's late start of
 * the step). ρ spreads each call's fixed cost over its rows, so the rows' share is if anything overstated;
 * on a GPU backend experts compute padded buckets, so there it is a rough figure. A barrier wait outside a
 * recognisable exchange (no layer, or not two waits for the device) is all speed: the parts always add up to
 * the waits analyseSpmd counts.
 */
export interface WaitSplit {
  /** per device, ms per step of barrier waits explained by uneven expert rows */
  rows_ms: number[];
  /** per device, ms per step of barrier waits that the rows do not explain */
  speed_ms: number[];
}

const EXPERT = new Set(['expert_forward', 'expert_backward']);

interface Exchange {
  /** per device: its experts' rows and compute ms, and its barrier waits (sorted by start when read) */
  rows: number[];
  ms: number[];
  waits: Span[][];
}

const device = (s: Span): number | undefined => (s.lane.kind === 'coordinator' ? undefined : s.lane.device);

/** `spans`: the profiled steps' spans (the device lanes are read); `steps`: how many steps they hold. */
export function splitWaits(spans: Span[], devices: number, steps: number): WaitSplit {
  const rows = new Array<number>(devices).fill(0);
  const speed = new Array<number>(devices).fill(0);
  const exchanges = new Map<string, Exchange>();
  const exchange = (s: Span): Exchange => {
    const key = `${s.step}/${s.micro ?? 0}/${s.layer}/${s.dir}`;
    let x = exchanges.get(key);
    if (!x) {
      x = { rows: new Array<number>(devices).fill(0), ms: new Array<number>(devices).fill(0),
        waits: Array.from({ length: devices }, () => []) };
      exchanges.set(key, x);
    }
    return x;
  };
  for (const s of spans) {
    const d = device(s);
    if (d === undefined || d >= devices) continue;
    if (s.name === 'allreduce') speed[d]! += Number(s.args?.barrier_wait_ms ?? 0);
    if (s.layer === undefined || s.dir === undefined) {
      if (s.name === 'barrier_wait') speed[d]! += s.dur;
      continue;
    }
    if (EXPERT.has(s.name)) {
      const x = exchange(s);
      x.rows[d]! += Number(s.args?.rows ?? 0);
      x.ms[d]! += s.dur;
    } else if (s.name === 'barrier_wait') exchange(s).waits[d]!.push(s);
  }
  for (const x of exchanges.values()) {
    const allRows = x.rows.reduce((a, b) => a + b, 0);
    const rate = allRows > 0 ? x.ms.reduce((a, b) => a + b, 0) / allRows : 0;
    const most = Math.max(...x.rows) * rate;
    x.waits.forEach((w, d) => {
      const second = w.length === 2 ? [...w].sort((a, b) => a.ts - b.ts)[1]! : undefined;
      const explained = second ? Math.min(second.dur, Math.max(0, most - x.rows[d]! * rate)) : 0;
      rows[d]! += explained;
      speed[d]! += w.reduce((a, s) => a + s.dur, 0) - explained;
    });
  }
  const n = Math.max(1, steps);
  return { rows_ms: rows.map((v) => v / n), speed_ms: speed.map((v) => v / n) };
}
