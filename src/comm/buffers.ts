/**
 * The all-to-all's memory: per Switch layer, four [G, E, C_max, d_model] float32 regions in
 * SharedArrayBuffers, allocated once and reused every step. Forward: dispatch (x rows out to the
 * devices) and combine (expert outputs back); backward: grad_out (∂L/∂o out) and grad_in (∂L/∂x back).
 */
export interface LayerBuffers {
  dispatch: SharedArrayBuffer;
  combine: SharedArrayBuffer;
  gradOut: SharedArrayBuffer;
  gradIn: SharedArrayBuffer;
}

export type Direction = keyof LayerBuffers;

export function allocateLayerBuffers(groups: number, experts: number, maxCapacity: number, dModel: number): LayerBuffers {
  const bytes = groups * experts * maxCapacity * dModel * 4;
  const make = () => new SharedArrayBuffer(bytes);
  return { dispatch: make(), combine: make(), gradOut: make(), gradIn: make() };
}

export const view = (b: SharedArrayBuffer | ArrayBuffer) => new Float32Array(b);
