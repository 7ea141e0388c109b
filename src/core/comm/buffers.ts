/**
 * The all-to-all's memory: per Switch layer, four [G, E, C_max, d_model] float32 regions in
 * SharedArrayBuffers, allocated once and reused every step. Forward: dispatch (x rows out to the
 * devices) and combine (expert outputs back); backward: grad_out (∂L/∂o out) and grad_in (∂L/∂x back).
 * Every (group, expert) block is C_max rows apart whatever a step's capacity C ≤ C_max is, so that
 * micro-batches (disjoint groups) never share a row.
 */
export interface LayerBuffers {
  dispatch: SharedArrayBuffer;
  combine: SharedArrayBuffer;
  gradOut: SharedArrayBuffer;
  gradIn: SharedArrayBuffer;
  /** the layout: [groups, experts, capacity, dModel]; `capacity` is the row stride of a (group, expert) block */
  shape: BufferShape;
}

export interface BufferShape {
  groups: number;
  experts: number;
  capacity: number;
  dModel: number;
}

export type Direction = 'dispatch' | 'combine' | 'gradOut' | 'gradIn';

export function allocateLayerBuffers(groups: number, experts: number, capacity: number, dModel: number): LayerBuffers {
  const bytes = groups * experts * capacity * dModel * 4;
  const make = () => new SharedArrayBuffer(bytes);
  return { dispatch: make(), combine: make(), gradOut: make(), gradIn: make(),
    shape: { groups, experts, capacity, dModel } };
}

export const view = (b: SharedArrayBuffer | ArrayBuffer) => new Float32Array(b);
