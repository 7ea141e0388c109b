import type { Config } from '../../core/config/defaults.js';
import type { DeviceState } from '../devices/messages.js';
import { initExpertShapes } from '../../core/model/params.js';
import { switchBlocks } from '../../core/model/stages.js';

/** A checkpoint that cannot be used: missing, corrupt, malformed, or made for another model. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** What a checkpoint holds: the step, the config it was made with, the vocabulary, and every trained array. */
export interface CheckpointData {
  step: number;
  config: Config;
  vocab: string[];
  /** where the random streams stand: every stream is (seed, purpose, step), so the step is the state */
  rng: { seed: number; step: number };
  arrays: { name: string; kind: 'param' | 'm' | 'v'; shape: number[]; data: Float32Array }[];
}

/** Every expert parameter's name and shape, whichever device owns it. */
export function expertShapes(config: Config): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const block of switchBlocks(config)) {
    for (let e = 0; e < config.moe.n_experts; e++)
      for (const [k, p] of initExpertShapes(config, block, e)) out.set(k, p);
  }
  return out;
}

/**
 * A checkpoint's arrays as the dense part and the experts (weights and AdamW moments each), after
 * checking that every parameter is there with its exact shape and that it holds nothing else. Both
 * layouts restore through this: a checkpoint does not know which layout wrote it.
 */
export function splitCheckpoint(arrays: CheckpointData['arrays'], dense: Map<string, number[]>,
  experts: Map<string, number[]>): { dense: DeviceState; experts: DeviceState } {
  const byKind = (kind: string) => new Map(arrays.filter((a) => a.kind === kind).map((a) => [a.name, a]));
  const [params, ms, vs] = [byKind('param'), byKind('m'), byKind('v')];
  const shapes = new Map([...dense, ...experts]);
  for (const [name, shape] of shapes) {
    const src = params.get(name);
    if (!src) throw new CheckpointError(`checkpoint lacks parameter ${name}: it was made for another model`);
    if (src.shape.join() !== shape.join())
      throw new CheckpointError(`checkpoint parameter ${name} has shape [${src.shape}], the model needs [${shape}]`);
  }
  for (const name of params.keys()) {
    if (!shapes.has(name))
      throw new CheckpointError(`checkpoint has parameter ${name}, which this model lacks: it was made for another ` +
        `model (check model.* and moe.n_experts)`);
  }
  const part = (names: Map<string, number[]>): DeviceState => {
    const s: DeviceState = { params: {}, m: {}, v: {} };
    for (const name of names.keys()) {
      const p = params.get(name)!;
      s.params[name] = { shape: p.shape, data: p.data };
      if (ms.has(name) && vs.has(name)) [s.m[name], s.v[name]] = [ms.get(name)!.data, vs.get(name)!.data];
    }
    return s;
  };
  return { dense: part(dense), experts: part(experts) };
}

/** Weights and moments as a checkpoint's arrays (the inverse of splitCheckpoint, one state at a time). */
export function stateArrays(s: DeviceState): CheckpointData['arrays'] {
  const arrays: CheckpointData['arrays'] = [];
  for (const [name, p] of Object.entries(s.params)) {
    arrays.push({ name, kind: 'param', shape: p.shape, data: p.data });
    if (s.m[name] && s.v[name])
      arrays.push({ name, kind: 'm', shape: p.shape, data: s.m[name]! },
        { name, kind: 'v', shape: p.shape, data: s.v[name]! });
  }
  return arrays;
}
