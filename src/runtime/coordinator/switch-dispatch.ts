import type { Config } from '../../core/config/defaults.js';
import { view, type LayerBuffers } from '../../core/comm/buffers.js';
import { packChoices, packTokens, unpackChoices, unpackSumTokens } from '../../core/comm/slots.js';
import type { ExchangeRequest, ExpertDevice } from '../devices/device.js';
import type { ComputeReport } from '../devices/messages.js';
import type { RoutingPlan } from '../../core/router/plan.js';
import { TokenRouter, type GroupRange, type RouteInputs, type RouteMode } from '../../core/router/route.js';
import { PROFILE } from '../../core/instrument/recorder.js';

export interface ExchangeTiming {
  /** wall time from posting the requests until every device answered (the exchange in flight) */
  inflightMs: number;
  /** per device: compute time it reported */
  computeMs: number[];
  /** spmd: time this replica waited at the exchange's barriers (for the slowest device), which is its wait_ms */
  waitMs?: number;
}

export interface SwitchForward {
  plan: RoutingPlan;
  /** expert output rows per token-choice, [N·k, d] */
  outputs: Float32Array;
  timing: ExchangeTiming;
}

/** One exchange in flight. */
interface Exchange {
  layer: number;
  micro: number;
  dir: 'fwd' | 'bwd';
  plan: RoutingPlan;
  packStart: number;
  /** when the requests went out (coordinator clock) */
  posted: number;
  replies: Promise<ComputeReport[]>;
  /** with profiling on: when each device's answer reached the coordinator */
  answered?: number[];
  flow?: number;
}

const COORDINATOR = { kind: 'coordinator' } as const;

/** A Switch layer's all-to-all as the Engine sees it: routing, then the exchange forward and backward. */
export interface Exchanger {
  route(layer: number, probs: Float32Array, mode: RouteMode, step: number, groups: GroupRange,
    inputs?: RouteInputs): RoutingPlan;
  /**
   * The outputs (and the backward's grad) may be reused by this layer and micro-batch's next exchange in
   * the same direction: read them before awaiting another exchange (the engine makes tensors of them at once).
   */
  forward(layer: number, micro: number, plan: RoutingPlan, rows: Float32Array, train: boolean,
    step: number): Promise<SwitchForward>;
  backward(layer: number, micro: number, plan: RoutingPlan, gradOutputs: Float32Array,
    step: number): Promise<{ grad: Float32Array; timing: ExchangeTiming }>;
  /** time spent packing and unpacking so far (the engine's idle time excludes it) */
  busyMs: number;
}

/**
 * The coordinator's side of a Switch layer: routing decisions, the all-to-all dispatch of token
 * rows into the [G, E, C, d] slots, the devices' expert compute, and the combine back to tokens.
 * Micro-batches own disjoint groups, so their exchanges use disjoint slots of the same buffers.
 */
export class SwitchDispatcher implements Exchanger {
  private readonly router: TokenRouter;

  constructor(
    private readonly config: Config,
    private readonly devices: ExpertDevice[],
    private readonly buffers: LayerBuffers[],
  ) {
    this.router = new TokenRouter(config);
  }

  route(layer: number, probs: Float32Array, mode: RouteMode, step: number, groups: GroupRange,
    inputs?: RouteInputs): RoutingPlan {
    return this.router.route(layer, probs, mode, step, groups, inputs);
  }

  /**
   * Combine results per (layer, micro-batch, direction), reused from step to step: a new array of a quarter
   * megabyte for every unpack cost more than the unpack (see Exchanger.forward for how long one is valid).
   */
  private readonly results = new Map<string, Float32Array>();

  private result(layer: number, micro: number, dir: 'fwd' | 'bwd', length: number): Float32Array {
    const key = `${layer}/${micro}/${dir}`;
    let out = this.results.get(key);
    if (out?.length !== length) this.results.set(key, (out = new Float32Array(length)));
    return out;
  }

  /** The request every device gets: the plan's groups and their counts only. */
  private request(layer: number, micro: number, plan: RoutingPlan, train: boolean, step: number): ExchangeRequest {
    const stride = this.buffers[layer]!.shape.capacity;
    if (plan.capacity > stride || plan.groupOffset + plan.groups > this.buffers[layer]!.shape.groups) {
      throw new Error(`Switch layer ${layer}: a plan of ${plan.groups} groups from ${plan.groupOffset} with capacity ` +
        `${plan.capacity} does not fit buffers of ${this.buffers[layer]!.shape.groups} groups × ${stride} slots`);
    }
    return { layer, micro, firstGroup: plan.groupOffset, capacity: plan.capacity, counts: plan.counts, train, step };
  }

  /** Dispatch u's rows to their slots, run the experts on every device, combine. */
  async forward(layer: number, micro: number, plan: RoutingPlan, rows: Float32Array, train: boolean,
    step: number): Promise<SwitchForward> {
    const d = this.config.model.d_model;
    const b = this.buffers[layer]!;
    const { result: outputs, timing } = await this.exchange(this.request(layer, micro, plan, train, step), 'fwd', plan,
      () => packTokens(plan, rows, d, view(b.dispatch), b.shape.capacity),
      (dev, req) => dev.forward(req),
      () => unpackChoices(plan, view(b.combine), d, b.shape.capacity,
        this.result(layer, micro, 'fwd', plan.slot.length * d)));
    return { plan, outputs, timing };
  }

  /** Backward all-to-all: ∂L/∂o rows out to the slots, devices' backward, input gradients back per token. */
  async backward(layer: number, micro: number, plan: RoutingPlan, gradOutputs: Float32Array,
    step: number): Promise<{ grad: Float32Array; timing: ExchangeTiming }> {
    const d = this.config.model.d_model;
    const b = this.buffers[layer]!;
    const { result: grad, timing } = await this.exchange(this.request(layer, micro, plan, true, step), 'bwd', plan,
      () => packChoices(plan, gradOutputs, d, view(b.gradOut), b.shape.capacity),
      (dev, req) => dev.backward(req),
      () => unpackSumTokens(plan, view(b.gradIn), d, b.shape.capacity,
        this.result(layer, micro, 'bwd', (plan.slot.length / plan.topK) * d)));
    return { grad, timing };
  }

  /** One exchange: pack the slots, every device computes, unpack; timed (and profiled when on). */
  private async exchange<R>(req: ExchangeRequest, dir: 'fwd' | 'bwd', plan: RoutingPlan, pack: () => void,
    call: (dev: ExpertDevice, req: ExchangeRequest) => Promise<ComputeReport>,
    unpack: () => R): Promise<{ result: R; timing: ExchangeTiming }> {
    const t0 = performance.now();
    pack();
    const ex = this.post({ layer: req.layer, micro: req.micro, dir, plan, packStart: t0 }, (dev) => call(dev, req));
    const reports = await ex.replies;
    const t1 = performance.now();
    const result = unpack();
    this.done(ex, reports, t1);
    return { result, timing: { inflightMs: t1 - ex.posted, computeMs: reports.map((r) => r.computeMs) } };
  }

  /**
   * Coordinator time spent packing and unpacking slots so far. The engine subtracts what of it falls
   * inside an await (another micro-batch's unpack) from the time it sat idle waiting on devices.
   */
  busyMs = 0;

  /**
   * Sends one exchange's requests (its slots are packed); with profiling on, stamps the pack and when each
   * device answers.
   */
  private post(ex: Omit<Exchange, 'posted' | 'replies' | 'answered' | 'flow'>,
    call: (dev: ExpertDevice) => Promise<ComputeReport>): Exchange {
    const posted = performance.now();
    this.busyMs += posted - ex.packStart;
    const P = PROFILE;
    if (!P) return { ...ex, posted, replies: Promise.all(this.devices.map(call)) };
    const flow = P.flowId();
    P.add({ name: 'pack', cat: 'comm', lane: COORDINATOR, ts: ex.packStart, dur: posted - ex.packStart,
      micro: ex.micro, layer: ex.layer, dir: ex.dir, flow, flowPhase: 's' });
    const answered: number[] = [];
    const t = performance.now();
    const replies = Promise.all(this.devices.map((dev, i) => call(dev)
      .then((r) => ((answered[i] = performance.now()), r))));
    P.add({ name: 'device_calls', cat: 'device', lane: COORDINATOR, ts: t, dur: performance.now() - t, micro: ex.micro,
      layer: ex.layer, dir: ex.dir });
    return { ...ex, posted, replies, answered, flow };
  }

  /** An exchange is combined (unpacked from `t1` to now); with profiling on, records what each device did and when. */
  private done(ex: Exchange, reports: ComputeReport[], t1: number): void {
    const t2 = performance.now();
    this.busyMs += t2 - t1;
    const P = PROFILE;
    if (!P) return;
    const at = { micro: ex.micro, layer: ex.layer, dir: ex.dir } as const;
    const rows = ex.plan.counts.reduce((a, b) => a + b, 0);
    const bytes = rows * this.config.model.d_model * 4;
    P.addTraffic({ ts: ex.posted, layer: ex.layer, dir: ex.dir, bytesOut: bytes, bytesBack: bytes });
    reports.forEach((r, i) => {
      const start = P.fromAbsolute(r.start, i);
      const end = P.fromAbsolute(r.end, i);
      const free = P.deviceFree[i] ?? -Infinity;
      const link = { kind: 'link', device: i } as const;
      if (free > ex.posted)
        P.add({ name: 'device_queue', cat: 'comm', lane: link, ts: ex.posted, dur: Math.min(free, start) - ex.posted,
          ...at });
      const sent = Math.max(ex.posted, Math.min(free, start));
      if (start > sent) P.add({ name: 'signal', cat: 'comm', lane: link, ts: sent, dur: start - sent, ...at });
      P.add({ name: ex.dir === 'fwd' ? 'expert_forward' : 'expert_backward', cat: 'device',
        lane: { kind: 'device', device: i }, ts: start, dur: end - start, ...at, flow: ex.flow, flowPhase: 't' });
      for (const seg of r.segments) {
        const s0 = P.fromAbsolute(seg.start, i);
        P.add({ name: seg.name, cat: 'device', lane: { kind: 'device', device: i }, ts: s0,
          dur: P.fromAbsolute(seg.end, i) - s0, ...at });
      }
      const back = ex.answered![i]!;
      if (back > end) P.add({ name: 'reply', cat: 'comm', lane: link, ts: end, dur: back - end, ...at });
      P.deviceFree[i] = Math.max(free, end);
    });
    P.add({ name: 'unpack', cat: 'comm', lane: COORDINATOR, ts: t1, dur: t2 - t1, ...at, flow: ex.flow,
      flowPhase: 'f' });
  }

}
