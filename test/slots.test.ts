import test from 'ava';
import {
  extractDeviceSlots, insertDeviceSlots, packTokens, slotOffset, slotOffsets, unpackChoices, unpackSumTokens,
} from '../src/core/comm/slots.js';
import { rowCopier } from '../src/core/comm/rows.js';
import { planRouting } from '../src/core/router/plan.js';
import { randomArray } from './helpers.js';

test('row copies: the float64 path (d a multiple of 8, aligned) and the fallback (any d, any offset) copy exactly', (t) => {
  for (const [d, srcOffset] of [[16, 0], [24, 2], [12, 0], [7, 1]] as const) {
    const src = new Float32Array(randomArray(10 * d + 8, d).buffer, srcOffset * 4, 10 * d);
    const dst = new Float32Array(10 * d);
    const copy = rowCopier(dst, src, d);
    for (let r = 0; r < 10; r++) copy(((r * 3) % 10) * d, r * d);
    for (let r = 0; r < 10; r++) t.deepEqual(Array.from(dst.subarray(((r * 3) % 10) * d, ((r * 3) % 10 + 1) * d)), Array.from(src.subarray(r * d, (r + 1) * d)));
  }
});

for (const d of [16, 12]) {
  test(`pack then unpack returns every kept row, in buffers strided by their own capacity (d = ${d}); device copies touch only their groups`, (t) => {
    const N = 48, E = 4, G = 3, stride = 16;
    const probs = randomArray(N * E, 3).map((x) => Math.abs(x));
    const plan = planRouting(probs, E, { groups: G, topK: 1, capacityFactor: 1, minCapacity: 1, dropTokens: true, policy: 'position', groupOffset: 1 });
    t.true(plan.capacity < stride);
    const rows = randomArray(N * d, 9);
    const buffer = new Float32Array((G + 1) * E * stride * d).fill(NaN); // group 0 belongs to someone else
    packTokens(plan, rows, d, buffer, stride);
    const back = unpackChoices(plan, buffer, d, stride);
    t.deepEqual(unpackSumTokens(plan, buffer, d, stride), back);
    for (let tok = 0; tok < N; tok++) {
      const row = Array.from(back.subarray(tok * d, (tok + 1) * d));
      t.deepEqual(row, plan.slot[tok]! >= 0 ? Array.from(rows.subarray(tok * d, (tok + 1) * d)) : new Array(d).fill(0));
    }
    const slots = { firstGroup: 1, counts: plan.counts, experts: E, stride, capacity: plan.capacity, dModel: d, first: 2, count: 2 };
    const local = extractDeviceSlots(buffer, slots);
    const copy = new Float32Array(buffer.length).fill(NaN);
    insertDeviceSlots(copy, local, slots);
    for (let i = 0; i < E * stride * d; i++) t.true(Number.isNaN(copy[i]!), 'group 0 untouched');
    t.deepEqual(unpackChoices({ ...plan, expert: plan.expert.map((e) => e), slot: plan.slot.map((s, i) => (plan.expert[i]! >= 2 ? s : -1)) }, copy, d, stride),
      unpackChoices({ ...plan, slot: plan.slot.map((s, i) => (plan.expert[i]! >= 2 ? s : -1)) }, buffer, d, stride));
  });
}

test('slotOffsets (computed once per plan) is slotOffset of every kept choice, −1 for dropped ones', (t) => {
  const N = 48, E = 4, G = 3, stride = 16, d = 8;
  const probs = randomArray(N * E, 5).map((x) => Math.abs(x));
  for (const topK of [1, 2]) {
    const plan = planRouting(probs, E, {
      groups: G, topK, capacityFactor: 0.75, minCapacity: 1, dropTokens: true, policy: 'position', groupOffset: 2,
    });
    t.true(plan.dropped > 0);
    const at = slotOffsets(plan, d, stride);
    for (let i = 0; i < plan.slot.length; i++) t.is(at[i], plan.slot[i]! < 0 ? -1 : slotOffset(plan, i, d, stride));
  }
});
