import type { RoutingPlan } from '../router/plan.js';
import { rowCopier } from './rows.js';

/**
 * Moving token rows between the token-major activations [N, d_model] and the slot buffer
 * [G, E, C_max, d_model]: the row of token t's choice c sits at ((g·E + e)·C_max + s)·d_model, where
 * C_max (`stride`) is the buffer's capacity, not the plan's.
 */
export function slotOffset(plan: RoutingPlan, i: number, d: number, stride: number): number {
  const t = Math.floor(i / plan.topK);
  const g = plan.groupOffset + Math.floor(t / plan.tokensPerGroup);
  return ((g * plan.experts + plan.expert[i]!) * stride + plan.slot[i]!) * d;
}

/**
 * Every token-choice's row offset in the slot buffer (−1 where dropped), computed once per plan and
 * stride: a plan is packed and unpacked four times (forward and backward, out and back).
 */
const offsetCache = new WeakMap<RoutingPlan, { key: string; offsets: Int32Array }>();
export function slotOffsets(plan: RoutingPlan, d: number, stride: number): Int32Array {
  const key = `${d}/${stride}`;
  const hit = offsetCache.get(plan);
  if (hit?.key === key) return hit.offsets;
  const { slot, expert, topK: K, tokensPerGroup: S, experts: E, groupOffset } = plan;
  const offsets = new Int32Array(slot.length);
  // slotOffset's arithmetic, with the plan's fields read once
  for (let i = 0; i < slot.length; i++) {
    const s = slot[i]!;
    offsets[i] = s < 0 ? -1 : (((groupOffset + Math.floor(Math.floor(i / K) / S)) * E + expert[i]!) * stride + s) * d;
  }
  offsetCache.set(plan, { key, offsets });
  return offsets;
}

/** Dispatch: copies each kept token-choice's row of `rows` (one row per token) into its slot. */
export function packTokens(plan: RoutingPlan, rows: Float32Array, d: number, buffer: Float32Array,
  stride: number): void {
  const K = plan.topK;
  const copy = rowCopier(buffer, rows, d);
  const at = slotOffsets(plan, d, stride);
  for (let i = 0; i < at.length; i++) if (at[i]! >= 0) copy(at[i]!, ((i / K) | 0) * d);
}

/** Dispatch for gradients: rows are per token-choice ([N·k, d]), as the combine gradient is. */
export function packChoices(plan: RoutingPlan, rows: Float32Array, d: number, buffer: Float32Array,
  stride: number): void {
  const copy = rowCopier(buffer, rows, d);
  const at = slotOffsets(plan, d, stride);
  for (let i = 0; i < at.length; i++) if (at[i]! >= 0) copy(at[i]!, i * d);
}

/** `out` (a caller's reused array, of exactly `length` floats) zeroed when given, else a new array. */
function zeroed(out: Float32Array | undefined, length: number): Float32Array {
  if (!out) return new Float32Array(length);
  if (out.length !== length) throw new Error(`an output of ${out.length} floats for ${length}`);
  return out.fill(0);
}

/**
 * Combine: each token-choice's expert output row ([N·k, d]); dropped choices stay zero. Into `out` when
 * given (overwritten), else into a new array.
 */
export function unpackChoices(plan: RoutingPlan, buffer: Float32Array, d: number, stride: number,
  out?: Float32Array): Float32Array {
  out = zeroed(out, plan.slot.length * d);
  const copy = rowCopier(out, buffer, d);
  const at = slotOffsets(plan, d, stride);
  for (let i = 0; i < at.length; i++) if (at[i]! >= 0) copy(i * d, at[i]!);
  return out;
}

/** Combine for gradients: a token's input gradient is the sum over its kept choices ([N, d]); `out` as above. */
export function unpackSumTokens(plan: RoutingPlan, buffer: Float32Array, d: number, stride: number,
  out?: Float32Array): Float32Array {
  const K = plan.topK;
  if (K === 1) return unpackChoices(plan, buffer, d, stride, out); // one choice: the sum is the row
  out = zeroed(out, (plan.slot.length / K) * d);
  const at = slotOffsets(plan, d, stride);
  for (let i = 0; i < at.length; i++) {
    const o = at[i]!;
    if (o < 0) continue;
    const t = Math.floor(i / K);
    for (let j = 0; j < d; j++) out[t * d + j]! += buffer[o + j]!;
  }
  return out;
}

/**
 * One device's part of one exchange: groups [firstGroup, firstGroup + counts.length / experts) of the
 * shared [G, E, stride, d] layout, its experts [first, first + count). Payloads `transfer` and `clone`
 * carry it as a compact [groups, count, capacity, d] array holding only the rows in `counts`.
 */
export interface DeviceSlots {
  firstGroup: number;
  /** [groups·E] rows per (group, expert) of this exchange */
  counts: Int32Array;
  experts: number;
  /** the shared buffer's rows per (group, expert) */
  stride: number;
  /** the compact copy's rows per (group, expert): the plan's capacity */
  capacity: number;
  dModel: number;
  first: number;
  count: number;
}

/**
 * Visits every (group, local expert) block of the exchange: its offset in the shared layout and in the
 * compact copy, and its rows.
 */
function eachBlock(s: DeviceSlots, f: (shared: number, compact: number, length: number) => void): void {
  const E = s.experts;
  const G = s.counts.length / E;
  for (let g = 0; g < G; g++) {
    for (let j = 0; j < s.count; j++) {
      const rows = s.counts[g * E + s.first + j]!;
      if (rows === 0) continue;
      const shared = ((s.firstGroup + g) * E + s.first + j) * s.stride * s.dModel;
      const compact = (g * s.count + j) * s.capacity * s.dModel;
      f(shared, compact, rows * s.dModel);
    }
  }
}

/** Copies a device's rows of this exchange out of the shared layout (payload transfer | clone). */
export function extractDeviceSlots(buffer: Float32Array, s: DeviceSlots): Float32Array {
  const out = new Float32Array((s.counts.length / s.experts) * s.count * s.capacity * s.dModel);
  eachBlock(s, (shared, compact, n) => out.set(buffer.subarray(shared, shared + n), compact));
  return out;
}

/** Writes a device's rows of this exchange back into the shared layout; other groups' rows are untouched. */
export function insertDeviceSlots(buffer: Float32Array, local: Float32Array, s: DeviceSlots): void {
  eachBlock(s, (shared, compact, n) => buffer.set(local.subarray(compact, compact + n), shared));
}
