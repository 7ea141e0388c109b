import type { RoutingPlan } from '../router/plan.js';

/**
 * Moving token rows between the token-major activations [N, d_model] and the slot buffer
 * [G, E, C, d_model]: the row of token t's choice c sits at ((g·E + e)·C + s)·d_model.
 */
export function slotOffset(plan: RoutingPlan, i: number, d: number): number {
  const t = Math.floor(i / plan.topK);
  const g = plan.groupOffset + Math.floor(t / plan.tokensPerGroup);
  return ((g * plan.experts + plan.expert[i]!) * plan.capacity + plan.slot[i]!) * d;
}

/** Dispatch: copies each kept token-choice's row of `rows` (one row per token) into its slot. */
export function packTokens(plan: RoutingPlan, rows: Float32Array, d: number, buffer: Float32Array): void {
  const K = plan.topK;
  for (let i = 0; i < plan.slot.length; i++) {
    if (plan.slot[i]! < 0) continue;
    const t = Math.floor(i / K);
    buffer.set(rows.subarray(t * d, t * d + d), slotOffset(plan, i, d));
  }
}

/** Dispatch for gradients: rows are per token-choice ([N·k, d]), as the combine gradient is. */
export function packChoices(plan: RoutingPlan, rows: Float32Array, d: number, buffer: Float32Array): void {
  for (let i = 0; i < plan.slot.length; i++) {
    if (plan.slot[i]! < 0) continue;
    buffer.set(rows.subarray(i * d, i * d + d), slotOffset(plan, i, d));
  }
}

/** Combine: each token-choice's expert output row ([N·k, d]); dropped choices stay zero. */
export function unpackChoices(plan: RoutingPlan, buffer: Float32Array, d: number): Float32Array {
  const out = new Float32Array(plan.slot.length * d);
  for (let i = 0; i < plan.slot.length; i++) {
    if (plan.slot[i]! < 0) continue;
    const o = slotOffset(plan, i, d);
    out.set(buffer.subarray(o, o + d), i * d);
  }
  return out;
}

/** Combine for gradients: a token's input gradient is the sum over its kept choices ([N, d]). */
export function unpackSumTokens(plan: RoutingPlan, buffer: Float32Array, d: number): Float32Array {
  const K = plan.topK;
  const out = new Float32Array((plan.slot.length / K) * d);
  for (let i = 0; i < plan.slot.length; i++) {
    if (plan.slot[i]! < 0) continue;
    const o = slotOffset(plan, i, d);
    const t = Math.floor(i / K);
    for (let j = 0; j < d; j++) out[t * d + j]! += buffer[o + j]!;
  }
  return out;
}

/** Where one device's experts sit in the [G, E, C, d] slot layout. */
export interface DeviceSlots {
  groups: number;
  experts: number;
  capacity: number;
  dModel: number;
  /** first global expert of the device, and how many it owns */
  first: number;
  count: number;
}

/** Copies a device's slots out of the shared layout into its own [G, E_local, C, d] array (payload transfer | clone). */
export function extractDeviceSlots(buffer: Float32Array, s: DeviceSlots): Float32Array {
  const block = s.count * s.capacity * s.dModel;
  const out = new Float32Array(s.groups * block);
  for (let g = 0; g < s.groups; g++) {
    const from = (g * s.experts + s.first) * s.capacity * s.dModel;
    out.set(buffer.subarray(from, from + block), g * block);
  }
  return out;
}

/** Writes a device's [G, E_local, C, d] array back into the shared layout. */
export function insertDeviceSlots(buffer: Float32Array, local: Float32Array, s: DeviceSlots): void {
  const block = s.count * s.capacity * s.dModel;
  for (let g = 0; g < s.groups; g++) buffer.set(local.subarray(g * block, (g + 1) * block), (g * s.experts + s.first) * s.capacity * s.dModel);
}
