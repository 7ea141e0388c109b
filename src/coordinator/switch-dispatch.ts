import type { Config } from '../config/defaults.js';
import { view, type LayerBuffers } from '../comm/buffers.js';
import { packChoices, packTokens, unpackChoices, unpackSumTokens } from '../comm/slots.js';
import type { ExchangeRequest, ExpertDevice } from '../experts/device.js';
import type { ComputeReport } from '../experts/messages.js';
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
  constructor(
    private readonly config: Config,
    private readonly devices: ExpertDevice[],
    private readonly buffers: LayerBuffers[],
  ) {}

  /** Routes with the router probabilities [N, E]: top-k, capacity C per group, the drop policy. */
  route(layer: number, probs: Float32Array, train: boolean, step: number, groups: GroupRange): RoutingPlan {
    const m = this.config.moe;
    return planRouting(probs, m.n_experts, {
      groups: groups.count,
      groupOffset: groups.offset,
      topK: m.top_k,
      capacityFactor: train ? m.capacity_factor : m.eval_capacity_factor,
      minCapacity: m.min_capacity,
      dropTokens: m.drop_tokens,
      policy: m.drop_policy,
      rngForGroup: (g) => rngFor(this.config.seed, train ? 'drop' : 'drop-eval', step, layer, g),
    });
  }

  /** The request every device gets: counts over the buffer's groups, zero outside the plan's own. */
  private request(layer: number, micro: number, plan: RoutingPlan, train: boolean, step: number): ExchangeRequest {
    const E = plan.experts;
    const counts = new Int32Array((plan.groupOffset + plan.groups) * E);
    counts.set(plan.counts, plan.groupOffset * E);
    return { layer, micro, capacity: plan.capacity, counts, train, step };
  }

  /** Dispatch u's rows to their slots, run the experts on every device, combine. */
  async forward(layer: number, micro: number, plan: RoutingPlan, rows: Float32Array, train: boolean, step: number): Promise<SwitchForward> {
    const d = this.config.model.d_model;
    const bufs = this.buffers[layer]!;
    packTokens(plan, rows, d, view(bufs.dispatch));
    const req = this.request(layer, micro, plan, train, step);
    const t0 = performance.now();
    const reports = await Promise.all(this.devices.map((dev) => dev.forward(req)));
    const timing = this.timing(t0, reports);
    return { plan, outputs: unpackChoices(plan, view(bufs.combine), d), timing };
  }

  /** Backward all-to-all: ∂L/∂o rows out to the slots, devices' backward, input gradients back per token. */
  async backward(layer: number, micro: number, plan: RoutingPlan, gradOutputs: Float32Array): Promise<{ grad: Float32Array; timing: ExchangeTiming }> {
    const d = this.config.model.d_model;
    const bufs = this.buffers[layer]!;
    packChoices(plan, gradOutputs, d, view(bufs.gradOut));
    const req = this.request(layer, micro, plan, true, -1);
    const t0 = performance.now();
    const reports = await Promise.all(this.devices.map((dev) => dev.backward(req)));
    const timing = this.timing(t0, reports);
    return { grad: unpackSumTokens(plan, view(bufs.gradIn), d), timing };
  }

  private timing(t0: number, reports: ComputeReport[]): ExchangeTiming {
    return { waitMs: performance.now() - t0, computeMs: reports.map((r) => r.computeMs) };
  }
}
