import { view, type Direction, type LayerBuffers } from '../../core/comm/buffers.js';
import type { ExchangeMessage } from './messages.js';

/**
 * Where one exchange's slots are, as a device sees them: the shared [G, E, C_max, d] buffer (its
 * groups from `firstGroup`), or the device's own compact [groups, E_local, C, d] copy (payloads
 * `transfer` and `clone`). Expert e's rows of group g start at ((firstGroup + g)·experts + e − base)·stride·d.
 */
export interface SlotView {
  data: Float32Array;
  /** experts per group in `data`, and the global index of the first */
  experts: number;
  base: number;
  /** rows per (group, expert) block */
  stride: number;
  firstGroup: number;
}

export function slotView(buffers: LayerBuffers[], layer: number, dir: Direction, req: ExchangeMessage,
  experts: number[], totalExperts: number, payload?: Float32Array): SlotView {
  if (payload)
    return { data: payload, experts: experts.length, base: experts[0]!, stride: req.capacity, firstGroup: 0 };
  const b = buffers[layer]!;
  return { data: view(b[dir]), experts: totalExperts, base: 0, stride: b.shape.capacity, firstGroup: req.firstGroup };
}

const blockOffset = (v: SlotView, g: number, e: number, d: number) =>
  ((v.firstGroup + g) * v.experts + (e - v.base)) * v.stride * d;

/** Rows expert e received over the exchange's groups. */
export function rowsFor(counts: Int32Array, E: number, e: number): number {
  let n = 0;
  for (let g = 0; g < counts.length / E; g++) n += counts[g * E + e]!;
  return n;
}

/**
 * Gathers expert e's rows from every group into one [rows, d] matrix of `rows ≥ n` rows (the rest zero:
 * padding to a bucket).
 */
export function gather(v: SlotView, e: number, counts: Int32Array, E: number, d: number,
  rows = rowsFor(counts, E, e)): Float32Array {
  const out = new Float32Array(rows * d);
  let row = 0;
  for (let g = 0; g < counts.length / E; g++) {
    const c = counts[g * E + e]!;
    const off = blockOffset(v, g, e, d);
    out.set(v.data.subarray(off, off + c * d), row * d);
    row += c;
  }
  return out;
}

/** Writes expert e's first n rows of `rows` back to its slots, group by group. */
export function scatter(v: SlotView, e: number, counts: Int32Array, E: number, d: number, rows: Float32Array): void {
  let row = 0;
  for (let g = 0; g < counts.length / E; g++) {
    const c = counts[g * E + e]!;
    v.data.set(rows.subarray(row * d, (row + c) * d), blockOffset(v, g, e, d));
    row += c;
  }
}

/** The all-to-all alone: expert e's rows copied block to block from one view to another (they are contiguous). */
export function copyRows(from: SlotView, to: SlotView, e: number, counts: Int32Array, E: number, d: number): number {
  let rows = 0;
  for (let g = 0; g < counts.length / E; g++) {
    const n = counts[g * E + e]! * d;
    const src = blockOffset(from, g, e, d);
    to.data.set(from.data.subarray(src, src + n), blockOffset(to, g, e, d));
    rows += n / d;
  }
  return rows;
}
