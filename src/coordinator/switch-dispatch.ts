import type { Config } from '../config/defaults.js';
import { view, type LayerBuffers } from '../comm/buffers.js';
import { packChoices, packTokens, unpackChoices, unpackSumTokens } from '../comm/slots.js';
import type { ExchangeRequest, ExpertDevice } from '../experts/device.js';
import type { ComputeReport } from '../experts/messages.js';
import { parseForceRouting, type ForceRouting } from '../router/force.js';
import { planRouting, type RoutingPlan } from '../router/plan.js';
import { rngFor } from '../util/rng.js';

export interface ExchangeTiming {
  /** wall time from dispatch until every device answered */
  waitMs: number;
  /** per device: compute time it reported */
  computeMs: number[];
}

export interface SwitchForward {
  plan: RoutingPlan;
  /** expert output rows per token-choice, [N·k, d] */
  outputs: Float32Array;
  timing: ExchangeTiming;
}

/** What a routing decision is for: training, evaluation, or generating text. */
export type RouteMode = 'train' | 'eval' | 'generate';

/** Which groups of the step a batch (or micro-batch) holds. */
export interface GroupRange {
  offset: number;
  count: number;
}

/**
 * The coordinator's side of a Switch layer: routing decisions, the all-to-all dispatch of token
 * rows into the [G, E, C, d] slots, the devices' expert compute, and the combine back to tokens.
 * Micro-batches own disjoint groups, so their exchanges use disjoint slots of the same buffers.
 */
export class SwitchDispatcher {
  private readonly force: ForceRouting;

  constructor(
    private readonly config: Config,
    private readonly devices: ExpertDevice[],
    private readonly buffers: LayerBuffers[],
  ) {
    this.force = parseForceRouting(config.moe.force_routing, config.moe.n_experts) as ForceRouting; // validated with the config
  }

  /**
   * Routes with the router probabilities [N, E]: top-k, capacity C per group, the drop policy.
   * Training uses capacity_factor, evaluation eval_capacity_factor; generation drops nothing (its one
   * window is a single group, and under `position` the token being predicted would go first).
   */
  route(layer: number, probs: Float32Array, mode: RouteMode, step: number, groups: GroupRange): RoutingPlan {
    const m = this.config.moe;
    return planRouting(probs, m.n_experts, {
      groups: groups.count,
      groupOffset: groups.offset,
      topK: m.top_k,
      capacityFactor: mode === 'train' ? m.capacity_factor : m.eval_capacity_factor,
      minCapacity: m.min_capacity,
      dropTokens: m.drop_tokens && mode !== 'generate',
      policy: m.drop_policy,
      rngForGroup: (g) => rngFor(this.config.seed, mode === 'train' ? 'drop' : 'drop-eval', step, layer, g),
      force: this.force,
      rngForForce: (g) => rngFor(this.config.seed, mode === 'train' ? 'force' : 'force-eval', step, layer, g),
    });
  }

  /** The request every device gets: the plan's groups and their counts only. */
  private request(layer: number, micro: number, plan: RoutingPlan, train: boolean, step: number): ExchangeRequest {
    const stride = this.buffers[layer]!.shape.capacity;
    if (plan.capacity > stride || plan.groupOffset + plan.groups > this.buffers[layer]!.shape.groups) {
      throw new Error(`Switch layer ${layer}: a plan of ${plan.groups} groups from ${plan.groupOffset} with capacity ${plan.capacity} does not fit buffers of ${this.buffers[layer]!.shape.groups} groups × ${stride} slots`);
    }
    return { layer, micro, firstGroup: plan.groupOffset, capacity: plan.capacity, counts: plan.counts, train, step };
  }

  /** Dispatch u's rows to their slots, run the experts on every device, combine. */
  async forward(layer: number, micro: number, plan: RoutingPlan, rows: Float32Array, train: boolean, step: number): Promise<SwitchForward> {
    const d = this.config.model.d_model;
    const bufs = this.buffers[layer]!;
    const req = this.request(layer, micro, plan, train, step);
    packTokens(plan, rows, d, view(bufs.dispatch), bufs.shape.capacity);
    const t0 = performance.now();
    const reports = await Promise.all(this.devices.map((dev) => dev.forward(req)));
    const timing = this.timing(t0, reports);
    return { plan, outputs: unpackChoices(plan, view(bufs.combine), d, bufs.shape.capacity), timing };
  }

  /** Backward all-to-all: ∂L/∂o rows out to the slots, devices' backward, input gradients back per token. */
  async backward(layer: number, micro: number, plan: RoutingPlan, gradOutputs: Float32Array, step: number): Promise<{ grad: Float32Array; timing: ExchangeTiming }> {
    const d = this.config.model.d_model;
    const bufs = this.buffers[layer]!;
    const req = this.request(layer, micro, plan, true, step);
    packChoices(plan, gradOutputs, d, view(bufs.gradOut), bufs.shape.capacity);
    const t0 = performance.now();
    const reports = await Promise.all(this.devices.map((dev) => dev.backward(req)));
    const timing = this.timing(t0, reports);
    return { grad: unpackSumTokens(plan, view(bufs.gradIn), d, bufs.shape.capacity), timing };
  }

  private timing(t0: number, reports: ComputeReport[]): ExchangeTiming {
    return { waitMs: performance.now() - t0, computeMs: reports.map((r) => r.computeMs) };
  }
}
