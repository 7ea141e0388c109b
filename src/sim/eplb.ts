import { ConfigError } from '../core/config/errors.js';

/**
 * Redundant experts placed as DeepSeek's EPLB places them (deepseek-ai/EPLB, eplb.py; facts from its README and
 * code, this implementation our own):
 *   replicate: every expert starts with one copy; each extra copy goes to the expert with the largest load per
 *     copy, one copy at a time (ties: the lowest expert);
 *   pack: copies (each carrying its expert's load ÷ its copies) go onto the GPUs heaviest first, each onto the
 *     least-loaded GPU that still has a free slot (ties: the lowest GPU), every GPU taking the same number; two
 *     copies of one expert may share a GPU.
 * Hierarchical policy, where the expert groups of node-limited routing divide evenly over the EP group's nodes:
 * the groups are first packed onto the nodes (by their loads), then each node replicates its own experts into its
 * share of the slots and packs them onto its GPUs. Otherwise the global policy: one node, one group.
 * Loads [10, 4, 3, 1], 2 extra slots, 2 GPUs of 3 slots (global): E0 gets both extra copies (10 > 4, then 5 > 4);
 * GPU 0 = {E1, E0, E3} = 8.33, GPU 1 = {E0, E0, E2} = 9.67, against {E0, E3} = 11, {E1, E2} = 7 without.
 */
export interface Placement {
  policy: 'global' | 'hierarchical';
  /** per GPU of the EP group, in order: the logical expert of each of its slots */
  gpus: number[][];
  /** per logical expert: how many copies it has */
  copies: number[];
  /** per GPU: the load its copies receive (an expert's load split evenly over its copies) */
  gpuLoads: number[];
}

/**
 * Copies per expert after `extra` more, each to the expert with the most load per copy (ties: the lowest index),
 * and the expert each extra copy went to, in order.
 */
export function replicate(loads: number[], extra: number): { copies: number[]; added: number[] } {
  const copies = loads.map(() => 1);
  const added: number[] = [];
  for (let n = 0; n < extra; n++) {
    let best = 0;
    for (let e = 1; e < loads.length; e++) if (loads[e]! / copies[e]! > loads[best]! / copies[best]!) best = e;
    copies[best]!++;
    added.push(best);
  }
  return { copies, added };
}

/**
 * Items into `packs` packs of equal count: heaviest first (ties: the earlier item), each into the lightest pack
 * with room (ties: the lower pack). Returns the items of each pack, in the order they went in.
 */
export function balancedPacking(weights: number[], packs: number): number[][] {
  const room = weights.length / packs;
  const out: number[][] = Array.from({ length: packs }, () => []);
  const totals = new Array<number>(packs).fill(0);
  const order = weights.map((_, i) => i).sort((a, b) => weights[b]! - weights[a]! || a - b);
  for (const item of order) {
    let pack = -1;
    for (let p = 0; p < packs; p++) if (out[p]!.length < room && (pack < 0 || totals[p]! < totals[pack]!)) pack = p;
    out[pack]!.push(item);
    totals[pack]! += weights[item]!;
  }
  return out;
}

/** Replicate `experts` (logical ids, with their loads) into `slots` copies and pack them onto `gpus` GPUs. */
function placeWithin(experts: number[], loads: number[], slots: number, gpus: number): { gpus: number[][]; copies: number[] } {
  const { copies, added } = replicate(experts.map((e) => loads[e]!), slots - experts.length);
  // the copies in slot order: each expert once, then the extra copies in the order they were made
  const items = [...experts.keys(), ...added];
  const packed = balancedPacking(items.map((i) => loads[experts[i]!]! / copies[i]!), gpus);
  return { gpus: packed.map((pack) => pack.map((slot) => experts[items[slot]!]!)), copies };
}

/** Where `redundant` extra copies go and how `loads` then fall on the EP group's `gpus` GPUs over `nodes` nodes. */
export function placeExperts(loads: number[], opts: { redundant: number; gpus: number; groups?: number; nodes?: number }): Placement {
  const E = loads.length;
  const slots = E + opts.redundant;
  const nodes = opts.nodes ?? 1;
  const groups = opts.groups ?? 0;
  if (slots % opts.gpus !== 0) {
    throw new ConfigError(`plan.redundant_experts must make moe.n_experts (${E}) + it divisible by plan.ep (${opts.gpus}) `
      + `(got ${opts.redundant})`);
  }
  const hierarchical = groups > 1 && nodes > 1 && E % groups === 0 && groups % nodes === 0 && opts.gpus % nodes === 0;
  const out: Placement = { policy: hierarchical ? 'hierarchical' : 'global', gpus: [], copies: new Array<number>(E).fill(0), gpuLoads: [] };
  const groupsOf = hierarchical ? groups : 1;
  const nodesOf = hierarchical ? nodes : 1;
  const size = E / groupsOf;
  const groupLoads = Array.from({ length: groupsOf }, (_, g) => loads.slice(g * size, (g + 1) * size).reduce((a, b) => a + b, 0));
  for (const onNode of balancedPacking(groupLoads, nodesOf)) {
    const experts = onNode.sort((a, b) => a - b).flatMap((g) => Array.from({ length: size }, (_, i) => g * size + i));
    const placed = placeWithin(experts, loads, slots / nodesOf, opts.gpus / nodesOf);
    experts.forEach((e, i) => (out.copies[e] = placed.copies[i]!));
    out.gpus.push(...placed.gpus);
  }
  out.gpuLoads = out.gpus.map((g) => g.reduce((a, e) => a + loads[e]! / out.copies[e]!, 0));
  return out;
}

/** Max GPU load over the mean: 1 when balanced. */
export const stragglerFactor = (gpuLoads: number[]) => {
  const mean = gpuLoads.reduce((a, b) => a + b, 0) / gpuLoads.length;
  return mean > 0 ? Math.max(...gpuLoads) / mean : 1;
};

/** The GPU loads without redundant experts: GPU t holds experts t·E/gpus … (t + 1)·E/gpus − 1 (switch-sim's order). */
export const contiguousLoads = (loads: number[], gpus: number) =>
  Array.from({ length: gpus }, (_, t) => loads.slice((t * loads.length) / gpus, ((t + 1) * loads.length) / gpus).reduce((a, b) => a + b, 0));
