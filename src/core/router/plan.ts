import type { Rng } from '../util/rng.js';
import { maxOf } from '../util/extremes.js';
import { expertCapacity } from './capacity.js';
import { chooseExperts } from './choose.js';
import { forceChoices } from './force.js';
import type { ForceRouting } from '../config/force-routing.js';

export type DropPolicy = 'position' | 'random' | 'priority';

export interface RoutingOptions {
  groups: number;
  /** index of this batch's first group among all groups of the step (micro-batches route their own groups) */
  groupOffset?: number;
  topK: number;
  capacityFactor: number;
  minCapacity: number;
  dropTokens: boolean;
  policy: DropPolicy;
  /** the random stream of a group (by its index among all groups), for policy 'random' */
  rngForGroup?: (group: number) => Rng;
  /** moe.force_routing: forced expert choices (the gates stay the router's probabilities) */
  force?: ForceRouting;
  /** the random stream of forced Zipf choices of a group (by its index among all groups) */
  rngForForce?: (group: number) => Rng;
  /** moe.balance aux_free: b_e, added to the scores for choosing only */
  bias?: Float32Array;
  /** device-limited routing: experts in `count` groups, a token's from its best `topK` only */
  routeGroups?: { count: number; topK: number };
  /** moe.router hash: every token's expert, fixed in advance [N] (top-1) */
  hashed?: Int32Array;
}

/**
 * Where every token goes: its expert and slot for each of its k choices, per-(group, expert) counts.
 * Token t's choice c is at index t·k + c; slot −1 means dropped (the token rides the residual only).
 */
export interface RoutingPlan {
  groups: number;
  /** global index of group 0 of this plan: its slots are at rows of groups groupOffset.. of the buffer */
  groupOffset: number;
  experts: number;
  topK: number;
  tokensPerGroup: number;
  capacity: number;
  expert: Int32Array;
  slot: Int32Array;
  /** router probability of the chosen expert, p_{t,e} */
  prob: Float32Array;
  /** [G·E] tokens kept per (group, expert) */
  counts: Int32Array;
  /** [G·E] tokens whose first choice is the expert, before dropping (f_i · S of the balance loss) */
  routed: Int32Array;
  /** token-choices dropped over capacity */
  dropped: number;
}

/**
 * Routes N tokens given their router probabilities [N, E] (row-major): top-k choice, then
 * capacity-limited slot assignment per group. All first choices are placed before any second
 * choice; within a choice rank, `policy` orders tokens: by position (the paper), at random, or by
 * the token's largest routing weight (batch-prioritised routing, Riquelme et al. 2021, V-MoE §3.1).
 */
export function planRouting(probs: Float32Array, experts: number, opts: RoutingOptions): RoutingPlan {
  const E = experts;
  const N = probs.length / E;
  const { groups: G, topK: K } = opts;
  if (N % G !== 0) throw new Error(`token count ${N} is not divisible by the group count ${G}`);
  const S = N / G;
  const prob = new Float32Array(N * K);
  const expert = opts.hashed ? Int32Array.from(opts.hashed) : chooseExperts(probs, E,
    { topK: K, bias: opts.bias, groups: opts.routeGroups });
  if (expert.length !== N * K) throw new Error(`${expert.length} choices for ${N} tokens × top-${K}`);
  if (opts.force && opts.force.kind !== 'learned')
    forceChoices(opts.force, expert, probs, E, K, S, (g) => opts.rngForForce!((opts.groupOffset ?? 0) + g));
  for (let t = 0; t < N; t++) for (let c = 0; c < K; c++) prob[t * K + c] = probs[t * E + expert[t * K + c]!]!;
  const routed = new Int32Array(G * E);
  for (let t = 0; t < N; t++) routed[Math.floor(t / S) * E + expert[t * K]!]!++;
  let capacity: number;
  if (opts.dropTokens)
    capacity = expertCapacity({ tokensPerGroup: S, experts: E, topK: K, capacityFactor: opts.capacityFactor,
      minCapacity: opts.minCapacity });
  else {
    // nobody is dropped: capacity is the busiest (group, expert) over all choices; a token picks an
    // expert at most once, so that is at most S, and min_capacity cannot push it past the group
    const demand = new Int32Array(G * E);
    for (let i = 0; i < N * K; i++) demand[Math.floor(i / K / S) * E + expert[i]!]!++;
    capacity = Math.min(S, Math.max(opts.minCapacity, maxOf(demand)));
  }
  const slot = new Int32Array(N * K).fill(-1);
  const counts = new Int32Array(G * E);
  let dropped = 0;
  for (let g = 0; g < G; g++) {
    const order = tokenOrder(opts, prob, g, S, K);
    for (let c = 0; c < K; c++) {
      const ord = order[c]!;
      for (let r = 0; r < S; r++) {
        const i = (g * S + ord[r]!) * K + c;
        const ge = g * E + expert[i]!;
        if (counts[ge]! < capacity) slot[i] = counts[ge]!++;
        else dropped++;
      }
    }
  }
  return { groups: G, groupOffset: opts.groupOffset ?? 0, experts: E, topK: K, tokensPerGroup: S, capacity, expert,
    slot, prob, counts, routed, dropped };
}

/**
 * The order (indices within the group) in which tokens claim slots, one order per choice rank.
 * Batch-prioritised routing ranks tokens once, by their largest routing weight p_{t,e¹} (the first
 * choice's probability), and every rank k uses that order: a confident token claims its second
 * expert before an unsure one does, whatever the second choices' own probabilities.
 */
function tokenOrder(opts: RoutingOptions, prob: Float32Array, g: number, S: number, K: number): Int32Array[] {
  const identity = () => {
    const order = new Int32Array(S);
    for (let i = 0; i < S; i++) order[i] = i;
    return order;
  };
  const start = g * S;
  if (opts.policy === 'position') {
    const byPosition = identity(); // read only: every rank can share it
    return Array.from({ length: K }, () => byPosition);
  }
  if (opts.policy === 'random') {
    if (!opts.rngForGroup) throw new Error("drop_policy 'random' needs a random stream");
    const perm = opts.rngForGroup((opts.groupOffset ?? 0) + g).permutation(S);
    return Array.from({ length: K }, () => perm);
  }
  const byTopWeight = identity().sort((a, b) => prob[(start + b) * K]! - prob[(start + a) * K]! || a - b);
  return Array.from({ length: K }, () => byTopWeight);
}
