import type { Config } from '../../core/config/defaults.js';
import { view, type LayerBuffers } from '../../core/comm/buffers.js';
import type { Barrier } from '../../core/comm/barrier.js';
import { packChoices, packTokens, unpackChoices, unpackSumTokens } from '../../core/comm/slots.js';
import type { ExchangeTiming, Exchanger, SwitchForward } from '../coordinator/switch-dispatch.js';
import type { DeviceHost } from '../devices/device-host.js';
import type { ComputeReport } from '../devices/messages.js';
import type { RoutingPlan } from '../../core/router/plan.js';
import { TokenRouter, type GroupRange, type RouteInputs, type RouteMode } from '../../core/router/route.js';
import { PROFILE, type Recorder } from '../../core/instrument/recorder.js';

/**
 * One device's side of a Switch layer in the spmd layout: the all-to-all goes device to device
 * through the shared [G = D, E, C, d] slots, no coordinator in between.
 *   1. route this device's tokens (its group), write each kept row into slot (group = me, expert e):
 *      the (source = me, destination = owner of e) region; publish my counts [E]
 *   2. barrier: every source has written
 *   3. run my experts on the rows from every source; write outputs to the same slots of `combine`
 *   4. barrier: every destination has written
 *   5. read my tokens' outputs back (combine)
 * Backward mirrors it with gradOut and gradIn.
 */
export class SpmdExchange implements Exchanger {
  private readonly router: TokenRouter;
  /** per Switch layer, [D·E] kept tokens per (source group, expert) */
  private readonly counts: Int32Array[];
  /** per Switch layer, the counts of its last exchange, once every source had written them */
  private readonly seen: Int32Array[] = [];
  busyMs = 0;

  constructor(
    private readonly config: Config,
    private readonly rank: number,
    private readonly host: DeviceHost,
    private readonly buffers: LayerBuffers[],
    counts: SharedArrayBuffer[],
    private readonly barrier: Barrier,
  ) {
    this.router = new TokenRouter(config);
    this.counts = counts.map((b) => new Int32Array(b));
  }

  route(layer: number, probs: Float32Array, mode: RouteMode, step: number, groups: GroupRange,
    inputs?: RouteInputs): RoutingPlan {
    return this.router.route(layer, probs, mode, step, groups, inputs);
  }

  async forward(layer: number, micro: number, plan: RoutingPlan, rows: Float32Array, train: boolean,
    step: number): Promise<SwitchForward> {
    const b = this.buffers[layer]!;
    const d = this.config.model.d_model;
    const { result: outputs, timing } = await this.exchange(layer, 'fwd', plan,
      () => packTokens(plan, rows, d, view(b.dispatch), b.shape.capacity),
      (counts) => this.host.forward({ kind: 'forward', layer, micro, firstGroup: 0, capacity: b.shape.capacity, counts,
        train, step }),
      () => unpackChoices(plan, view(b.combine), d, b.shape.capacity));
    return { plan, outputs, timing };
  }

  async backward(layer: number, micro: number, plan: RoutingPlan, gradOutputs: Float32Array,
    step: number): Promise<{ grad: Float32Array; timing: ExchangeTiming }> {
    const b = this.buffers[layer]!;
    const d = this.config.model.d_model;
    const { result: grad, timing } = await this.exchange(layer, 'bwd', plan,
      () => packChoices(plan, gradOutputs, d, view(b.gradOut), b.shape.capacity),
      (counts) => this.host.backward({ kind: 'backward', layer, micro, firstGroup: 0, capacity: b.shape.capacity,
        counts, step }),
      () => unpackSumTokens(plan, view(b.gradIn), d, b.shape.capacity));
    return { grad, timing };
  }

  /**
   * Per Switch layer, the tokens kept per expert over every device in its last exchange (the step's load,
   * as the main thread would sum it from every shard's tokens_per_expert).
   */
  load(): number[][] {
    const E = this.config.moe.n_experts;
    return this.seen.map((c) => Array.from({ length: E }, (_, e) => {
      let n = 0;
      for (let g = 0; g < c.length / E; g++) n += c[g * E + e]!;
      return n;
    }));
  }

  private async exchange<R>(layer: number, dir: 'fwd' | 'bwd', plan: RoutingPlan, pack: () => void,
    compute: (counts: Int32Array) => Promise<ComputeReport>,
    unpack: () => R): Promise<{ result: R; timing: ExchangeTiming }> {
    const t0 = performance.now();
    const E = this.config.moe.n_experts;
    const shared = this.counts[layer]!;
    if (plan.groups !== 1 || plan.groupOffset !== this.rank)
      throw new Error(`spmd device ${this.rank} routed groups ` +
        `${plan.groupOffset}..${plan.groupOffset + plan.groups - 1}; it owns group ${this.rank} only`);
    pack();
    shared.set(plan.counts, this.rank * E);
    const t1 = performance.now();
    const wait1 = this.barrier.wait(); // every source has written its rows and counts
    const t2 = performance.now();
    const counts = Int32Array.from(shared);
    this.seen[layer] = counts;
    const report = await compute(counts); // my experts, rows from every source
    const t3 = performance.now();
    const wait2 = this.barrier.wait(); // every destination has written its outputs
    const t4 = performance.now();
    const result = unpack();
    const t5 = performance.now();
    const waitMs = wait1 + wait2;
    this.busyMs += t5 - t0 - waitMs;
    const computeMs = new Array<number>(this.barrier.devices).fill(0);
    computeMs[this.rank] = report.computeMs;
    if (PROFILE) this.profile(PROFILE, layer, dir, plan, report, [t0, t1, t2, t3, t4, t5]);
    return { result, timing: { inflightMs: t5 - t0, computeMs, waitMs } };
  }

  /**
   * With profiling on, the exchange on this device's link lane: pack (with the bytes it sent to each
   * device), the two barrier waits, its experts' compute (and upload/download on a GPU backend),
   * unpack; and one traffic record per (this device → destination) pair.
   */
  private profile(P: Recorder, layer: number, dir: 'fwd' | 'bwd', plan: RoutingPlan, report: ComputeReport,
    t: number[]): void {
    const E = this.config.moe.n_experts;
    const D = this.barrier.devices;
    const per = E / D;
    const bytes = Array.from({ length: D }, (_, q) => {
      let rows = 0;
      for (let e = q * per; e < (q + 1) * per; e++) rows += plan.counts[e]!;
      return rows * this.config.model.d_model * 4;
    });
    const lane = { kind: 'link', device: this.rank } as const;
    const at = { layer, dir } as const;
    const local = (abs: number) => abs - performance.timeOrigin;
    P.add({ name: 'pack', cat: 'comm', lane, ts: t[0]!, dur: t[1]! - t[0]!, ...at, args: { bytes_to_device: bytes } });
    P.add({ name: 'barrier_wait', cat: 'wait', lane, ts: t[1]!, dur: t[2]! - t[1]!, ...at });
    P.add({ name: dir === 'fwd' ? 'expert_forward' : 'expert_backward', cat: 'device', lane, ts: local(report.start),
      dur: report.end - report.start, ...at, args: { rows: report.rows } });
    for (const seg of report.segments)
      P.add({ name: seg.name, cat: 'device', lane, ts: local(seg.start), dur: seg.end - seg.start, ...at });
    P.add({ name: 'barrier_wait', cat: 'wait', lane, ts: t[3]!, dur: t[4]! - t[3]!, ...at });
    P.add({ name: 'unpack', cat: 'comm', lane, ts: t[4]!, dur: t[5]! - t[4]!, ...at });
    bytes.forEach((b, q) => P.addTraffic({ ts: t[0]!, layer, dir, bytesOut: b, bytesBack: b, src: this.rank, dst: q }));
  }
}
