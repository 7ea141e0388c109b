import { resolveConfig } from '../../core/config/load.js';
import { startThreadDevices } from '../../runtime/devices/thread-device.js';
import type { ExchangeRequest, ExpertDevice } from '../../runtime/devices/device.js';
import { parseForceRouting, type ForceRouting } from '../../core/config/force-routing.js';
import { planRouting, type RoutingPlan } from '../../core/router/plan.js';
import { rngFor } from '../../core/util/rng.js';
import { meanMs } from '../../core/util/timing.js';
import { allocateLayerBuffers, view, type LayerBuffers } from '../../core/comm/buffers.js';
import { packTokens, unpackChoices } from '../../core/comm/slots.js';
import { maxOf } from '../../core/util/extremes.js';

/**
 * `switch-sim bench dispatch`: the all-to-all alone, on worker-thread devices: pack the token rows
 * into the [G, E, C, d] slots, signal every device, each copies its experts' rows from the dispatch
 * slots to the combine slots (no expert math), reply, unpack. Beside it, in the same run, this
 * machine's limits for the same bytes: an empty round trip to the devices and a single-thread memcpy.
 */
export interface DispatchCase {
  tokens: number;
  d_model: number;
  devices: number;
  experts: number;
  payload: 'shared' | 'transfer' | 'clone';
  skew: string;
}

export interface DispatchRow extends DispatchCase {
  /** slot bytes moved per call: kept rows out and back */
  bytes: number;
  dropped_fraction: number;
  us_per_call: number;
  gb_per_s: number;
  /** an empty request to every device and back, in parallel (µs) */
  round_trip_us: number;
  /** copying `bytes` once on one thread (µs) */
  memcpy_us: number;
  /** us_per_call / (round_trip_us + memcpy_us) */
  ratio_to_limit: number;
  /** where a call's time goes: packing, the devices' round trip (their copies included), unpacking (µs) */
  pack_us: number;
  devices_us: number;
  unpack_us: number;
}

export const CSV_COLUMNS = ['tokens', 'd_model', 'devices', 'experts', 'payload', 'skew', 'bytes', 'dropped_fraction',
  'us_per_call', 'gb_per_s', 'round_trip_us', 'memcpy_us', 'ratio_to_limit', 'pack_us', 'devices_us',
  'unpack_us'] as const;

/** Mean µs of one call of `f`. */
const time = async (f: () => unknown, budgetMs = 150, minReps = 5) => (await meanMs(f, budgetMs, minReps)) * 1000;

/** One group per device (as in training), tokens routed by `skew` at capacity factor 1.25. */
function plan(c: DispatchCase, force: ForceRouting): RoutingPlan {
  const probs = new Float32Array(c.tokens * c.experts).fill(1 / c.experts);
  return planRouting(probs, c.experts, {
    groups: c.devices, topK: 1, capacityFactor: 1.25, minCapacity: 1, dropTokens: true, policy: 'position',
    force, rngForForce: (g) => rngFor(1, 'bench-dispatch', g),
  });
}

/**
 * Runs every case; devices are started once per (devices, experts, d_model, payload) and reused across token
 * counts and skews.
 */
export async function benchDispatch(cases: DispatchCase[],
  log: (row: DispatchRow) => void = () => {}): Promise<DispatchRow[]> {
  const rows: DispatchRow[] = [];
  const groups = new Map<string, DispatchCase[]>();
  for (const c of cases)
    groups.set(`${c.devices}/${c.experts}/${c.d_model}/${c.payload}`,
      [...(groups.get(`${c.devices}/${c.experts}/${c.d_model}/${c.payload}`) ?? []), c]);
  for (const list of groups.values()) {
    const first = list[0]!;
    const maxTokens = maxOf(list.map((c) => c.tokens));
    const S = maxTokens / first.devices;
    const config = resolveConfig({
      sets: [`model.d_model=${first.d_model}`, 'model.n_heads=1', 'model.n_layers=1', 'model.d_ff=1',
        `moe.n_experts=${first.experts}`, `parallel.devices=${first.devices}`, `parallel.payload=${first.payload}`,
        'parallel.transport=threads', `data.batch_size=${first.devices}`],
    }).config;
    const buffers: LayerBuffers[] = [allocateLayerBuffers(first.devices, first.experts,
      Math.max(1, Math.ceil((1.25 * S) / first.experts)), first.d_model)];
    const devices = await startThreadDevices(config, [0], buffers);
    try {
      for (const c of list) {
        const row = await measure(c, devices, buffers[0]!);
        rows.push(row);
        log(row);
      }
    } finally {
      await Promise.all(devices.map((d) => d.close()));
    }
  }
  return rows;
}

async function measure(c: DispatchCase, devices: ExpertDevice[], buffers: LayerBuffers): Promise<DispatchRow> {
  const force = parseForceRouting(c.skew, c.experts);
  if (typeof force === 'string') throw new Error(`--skew ${force} (got ${JSON.stringify(c.skew)})`);
  const p = plan(c, force);
  const d = c.d_model;
  const rows = Float32Array.from({ length: c.tokens * d }, (_, i) => (i % 97) / 97);
  const req: ExchangeRequest = { layer: 0, micro: 0, firstGroup: 0, capacity: p.capacity, counts: p.counts,
    train: false, step: -1 };
  const stride = buffers.shape.capacity;
  let out: Float32Array = new Float32Array(0);
  const parts = { calls: 0, pack: 0, devices: 0, unpack: 0 };
  const call = async () => {
    const t0 = performance.now();
    packTokens(p, rows, d, view(buffers.dispatch), stride);
    const t1 = performance.now();
    await Promise.all(devices.map((dev) => dev.touch(req)));
    const t2 = performance.now();
    out = unpackChoices(p, view(buffers.combine), d, stride);
    const t3 = performance.now();
    parts.calls++;
    parts.pack += t1 - t0;
    parts.devices += t2 - t1;
    parts.unpack += t3 - t2;
  };
  const us = await time(call);
  const part = (ms: number) => (ms / parts.calls) * 1000;
  // the all-to-all must be lossless: every kept token's row comes back as it went
  for (let t = 0; t < c.tokens; t++) {
    if (p.slot[t]! < 0) continue;
    for (let j = 0; j < d; j += Math.max(1, d >> 2)) {
      if (out[t * d + j] !== rows[t * d + j]) throw new Error(`dispatch bench: token ${t} came back changed`);
    }
  }
  const kept = p.counts.reduce((a, b) => a + b, 0);
  const bytes = kept * d * 4 * 2;
  const roundTrip = await time(() => Promise.all(devices.map((dev) => dev.clock())));
  const src = new Float32Array(bytes / 4);
  const dst = new Float32Array(bytes / 4);
  const memcpy = await time(() => dst.set(src), 50, 20);
  return {
    ...c, bytes, dropped_fraction: p.dropped / c.tokens, us_per_call: us, gb_per_s: bytes / (us * 1e3),
    round_trip_us: roundTrip, memcpy_us: memcpy, ratio_to_limit: us / (roundTrip + memcpy),
    pack_us: part(parts.pack), devices_us: part(parts.devices), unpack_us: part(parts.unpack),
  };
}

export function toCsv(rows: DispatchRow[]): string {
  const cell = (v: unknown) => (typeof v === 'number' ? String(+v.toPrecision(6)) : String(v));
  return `${CSV_COLUMNS.join(',')}\n${rows.map((r) => CSV_COLUMNS.map((k) => cell(r[k])).join(',')).join('\n')}\n`;
}
