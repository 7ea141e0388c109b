import type { Config } from '../config/defaults.js';
import { rngFor } from '../util/rng.js';
import { parseForceRouting, type ForceRouting } from '../config/force-routing.js';
import { planRouting, type RoutingPlan } from './plan.js';

/** What a routing decision is for: training, evaluation, or generating text. */
export type RouteMode = 'train' | 'eval' | 'generate';

/** Which groups of the step a batch (or micro-batch, or spmd shard) holds. */
export interface GroupRange {
  offset: number;
  count: number;
}

/** What a layer's routing needs beside its scores: the aux-free bias, and hash routing's fixed experts. */
export interface RouteInputs {
  /** moe.balance aux_free: the layer's per-expert bias (choice only) */
  bias?: Float32Array;
  /** moe.router hash: each token's expert [N] */
  hashed?: Int32Array;
}

/**
 * A model's router decisions, the same in both layouts: the coordinator routes all groups of a step,
 * an spmd device its own. `moe.force_routing` is parsed once, here (the config was validated with it).
 */
export class TokenRouter {
  private readonly force: ForceRouting;

  constructor(private readonly config: Config) {
    this.force = parseForceRouting(config.moe.force_routing, config.moe.n_experts) as ForceRouting;
  }

  /**
   * Routes with the router probabilities [N, E]: top-k, capacity C per group, the drop policy.
   * Training uses capacity_factor, evaluation eval_capacity_factor; generation drops nothing (its one
   * window is a single group, and under `position` the token being predicted would go first).
   * Random streams are keyed by the group's index in the step, so any split of groups routes alike.
   */
  route(layer: number, probs: Float32Array, mode: RouteMode, step: number, groups: GroupRange,
    inputs: RouteInputs = {}): RoutingPlan {
    const { config } = this;
    const m = config.moe;
    return planRouting(probs, m.n_experts, {
      bias: inputs.bias,
      hashed: inputs.hashed,
      routeGroups: m.route_group_topk > 0 ? { count: m.route_groups || config.parallel.devices,
        topK: m.route_group_topk } : undefined,
      groups: groups.count,
      groupOffset: groups.offset,
      topK: m.top_k,
      capacityFactor: mode === 'train' ? m.capacity_factor : m.eval_capacity_factor,
      minCapacity: m.min_capacity,
      dropTokens: m.drop_tokens && mode !== 'generate',
      policy: m.drop_policy,
      rngForGroup: (g) => rngFor(config.seed, mode === 'train' ? 'drop' : 'drop-eval', step, layer, g),
      force: this.force,
      rngForForce: (g) => rngFor(config.seed, mode === 'train' ? 'force' : 'force-eval', step, layer, g),
    });
  }
}
