import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import { lmLogits, type Weights } from '../../core/model/blocks.js';
import { trainedNames, type ParamSet } from '../../core/model/params.js';
import { release, type Recording } from '../../core/backend/tape.js';
import { readView } from '../../core/backend/view.js';
import { stageCount, stageParams, switchBlocks, type StageInput, type StageOutput } from '../../core/model/stages.js';
import { PROFILE } from '../../core/instrument/recorder.js';
import { disposeConstants, routerScores, routingConstants } from '../../core/router/gates.js';
import { RouterState } from '../../core/model/router-state.js';
import type { RoutingPlan } from '../../core/router/plan.js';
import { addBackwardTiming, layerStats, mergeLayerStats, type LayerStats } from './layer-stats.js';
import { StepContext } from './step-context.js';
import { early, interleave, perChoice } from './rows.js';
import { forwardStage, stageGradients, type RecordedStage, type Upstream } from './stage-tape.js';
import type { ExchangeTiming, Exchanger, SwitchForward } from './switch-dispatch.js';
import type { RouteMode } from '../../core/router/route.js';

export interface EvalResult {
  ce: number;
  layers: LayerStats[];
  /** per micro-batch, per Switch layer: how every token was routed */
  plans: RoutingPlan[][];
  /** per micro-batch, per Switch layer: router probabilities [N, E] */
  probs: Float32Array[][];
}

export interface StepResult {
  loss: number;
  ce: number;
  balance_loss: number;
  z_loss: number;
  layers: LayerStats[];
}

/** One micro-batch's forward: what its backward needs, and what it measured. */
interface MicroRecord {
  ctx: StepContext;
  inputs: (StageInput | undefined)[];
  /** training: each stage's recorded forward, back-propagated in the backward pass */
  tapes: Recording<RecordedStage>[];
  plans: RoutingPlan[];
  /** router probabilities per Switch layer, [N, E] */
  probs: Float32Array[];
  layers: LayerStats[];
  ce: number;
  balance: number;
  z: number;
  /** final residual stream when no targets were given (sampling), [N, d] */
  h?: tf.Tensor2D;
}

/** `parallel.layout: spmd`: this engine is replica `rank` of `count`, and runs only its shard of each batch (routing group `rank`). */
export interface Shard {
  rank: number;
  count: number;
}

/**
 * The dense model's compute: runs the stages, the Switch layers' all-to-alls in between, and the
 * backward pass stage by stage in reverse, chaining gradients across the asynchronous expert work.
 * Parameter gradients of the dense weights accumulate in `grads`. In the coordinator layout one
 * engine (the coordinator) runs the whole batch; in spmd every device runs one on its shard.
 */
export class Engine {
  readonly grads = new Map<string, Float32Array>();
  private readonly paramNames: string[];
  /** per stage: the parameters it reads, computed once */
  private readonly stageNames: string[][] = [];
  private weights: Weights = new Map();
  private readonly routing: RouterState;

  constructor(
    readonly config: Config,
    readonly params: ParamSet,
    private readonly dispatcher: Exchanger,
    private readonly shard?: Shard,
  ) {
    for (const k of trainedNames(params)) this.grads.set(k, new Float32Array(params.get(k)!.data.length));
    this.paramNames = [...params.keys()];
    this.routing = new RouterState(config, params);
    this.refresh();
  }

  /** Re-uploads the weights after the optimizer changed them. */
  refresh(): void {
    tf.dispose([...this.weights.values()]);
    this.weights = new Map([...this.params].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  }

  /**
   * Splits a batch into `parallel.microbatches` micro-batches of whole routing groups, so that the
   * coordinator computes one micro-batch while the devices work on another.
   */
  private contexts(x: Int32Array, y: Int32Array | undefined, batch: number, step: number, mode: RouteMode): StepContext[] {
    // a replica's shard: `batch` sequences from sequence rank·batch of the step's batch (its draws are theirs)
    if (this.shard) return [new StepContext(this.config, batch, mode, step, x, y, 0, this.shard.rank * batch)];
    const M = batch % this.config.parallel.devices === 0 ? this.config.parallel.microbatches : 1;
    const per = x.length / M;
    return Array.from({ length: M }, (_, m) =>
      new StepContext(this.config, batch / M, mode, step, x.subarray(m * per, (m + 1) * per), y?.subarray(m * per, (m + 1) * per), m, (m * batch) / M));
  }

  /** Routing groups of micro-batch m: the step's G groups (G = devices) split evenly. */
  private groups(ctx: StepContext, M: number) {
    if (this.shard) return { offset: this.shard.rank, count: 1 };
    const D = this.config.parallel.devices;
    const G = (ctx.batch * M) % D === 0 ? D : 1;
    return { offset: (ctx.micro * G) / M, count: G / M };
  }

  /**
   * Forward, pipelined over micro-batches: stage k of micro-batch m+1 runs on the coordinator while
   * the devices compute the experts of micro-batch m.
   */
  private async forward(ctxs: StepContext[]): Promise<MicroRecord[]> {
    const S = stageCount(this.config) - 1;
    const M = ctxs.length;
    const recs: MicroRecord[] = ctxs.map((ctx) => ({ ctx, inputs: [], tapes: [], plans: [], probs: [], layers: [], ce: 0, balance: 0, z: 0 }));
    const pending: (Promise<SwitchForward> | undefined)[] = new Array(M);
    const probs: Float32Array[] = new Array(M);
    const carried: StageOutput[] = new Array(M);
    try {
      for (let k = 0; k <= S; k++) {
        for (let m = 0; m < M; m++) {
          const rec = recs[m]!;
          let input: StageInput | undefined;
          if (k > 0) {
            PROFILE?.at(m, k - 1, 'fwd');
            const busy = this.dispatcher.busyMs;
            const tw = performance.now();
            PROFILE?.begin('wait', 'wait');
            const sw = await pending[m]!; // the coordinator is idle unless an exchange finishes meanwhile (its unpack is subtracted)
            PROFILE?.end();
            const idleMs = performance.now() - tw - (this.dispatcher.busyMs - busy);
            PROFILE?.begin('combine_inputs', 'compute', switchBlocks(this.config)[k - 1]);
            pending[m] = undefined;
            const block = switchBlocks(this.config)[k - 1]!;
            rec.layers.push(layerStats(sw.plan, probs[m]!, sw.timing, { expertGroups: this.config.moe.route_groups || this.config.parallel.devices, bias: this.params.get(`h.${block}.router.bias`)?.data }));
            rec.layers[k - 1]!.wait_ms += sw.timing.waitMs ?? idleMs;
            const prev = carried[m]!;
            const seqLen = this.config.moe.balance === 'seq_aux_loss' ? rec.ctx.ids.length / rec.ctx.batch : undefined;
            input = { h: prev.h!, logits: prev.logits!, outputs: perChoice(sw.outputs, sw.plan.topK, this.config.model.d_model), routing: routingConstants(sw.plan, seqLen), ...(prev.shared ? { shared: prev.shared } : {}) };
            PROFILE?.end();
          }
          PROFILE?.at(m, k, 'fwd');
          PROFILE?.begin(`stage_forward`, 'compute');
          const out = forwardStage(k, input, this.weights, rec.ctx, M * (this.shard?.count ?? 1)); // loss terms ÷ micro-batches (and replicas)
          if (out.tape) rec.tapes.push(out.tape);
          rec.inputs.push(input);
          rec.balance += out.balance?.dataSync()[0] ?? 0;
          rec.z += out.z?.dataSync()[0] ?? 0;
          tf.dispose([out.balance, out.z].filter((t): t is tf.Scalar => t !== undefined));
          PROFILE?.end();
          if (k === S) {
            if (out.ce) rec.ce = out.ce.dataSync()[0]!;
            tf.dispose(out.ce);
            rec.h = out.h;
            continue;
          }
          const block = switchBlocks(this.config)[k]!;
          PROFILE?.begin('router_softmax', 'compute', block);
          const probsT = routerScores(out.logits!, this.config.moe);
          probs[m] = probsT.dataSync() as Float32Array; // router scores (softmax or sigmoid), float32 [N, E]
          probsT.dispose();
          PROFILE?.end();
          PROFILE?.begin('routing_plan', 'compute', block);
          const plan = this.dispatcher.route(k, probs[m]!, rec.ctx.mode, rec.ctx.step, this.groups(rec.ctx, M), this.routing.inputs(block, rec.ctx.ids));
          PROFILE?.end();
          rec.plans.push(plan);
          rec.probs.push(probs[m]!);
          pending[m] = early(this.dispatcher.forward(k, m, plan, readView(out.u!), rec.ctx.train, rec.ctx.step)); // packed before it returns
          out.u!.dispose();
          carried[m] = out;
        }
      }
    } catch (e) {
      await Promise.allSettled(pending.filter((p) => p !== undefined));
      tf.dispose(carried.flatMap((o) => (o ? [o.h, o.logits, o.shared].filter((t): t is tf.Tensor2D => t !== undefined) : [])));
      for (const rec of recs) this.releaseInputs(rec);
      throw e;
    }
    return recs;
  }

  /** Aux-free balancing after a training step (`load[k][e]`: Switch layer k's tokens per expert over the whole step). */
  updateExpertBias(load: number[][]): void {
    this.routing.step(load);
  }

  /** Forward and backward for one batch; coordinator gradients accumulate in `grads`, expert ones on the devices. */
  async trainStep(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<StepResult> {
    PROFILE?.at(undefined, undefined, undefined);
    PROFILE?.begin('step_setup');
    const ctxs = this.contexts(x, y, batch, step, 'train');
    PROFILE?.end();
    try {
      const recs = await this.forward(ctxs);
      await this.backward(recs);
      PROFILE?.at(undefined, undefined, undefined);
      PROFILE?.begin('step_stats');
      const mean = (f: (r: MicroRecord) => number) => recs.reduce((a, r) => a + f(r), 0) / recs.length;
      const [ce, balance, z] = [mean((r) => r.ce), mean((r) => r.balance), mean((r) => r.z)];
      const layers = recs[0]!.layers.map((_, l) => mergeLayerStats(recs.map((r) => r.layers[l]!)));
      PROFILE?.end();
      return { loss: ce + balance + z, ce, balance_loss: balance, z_loss: z, layers };
    } finally {
      for (const c of ctxs) c.dispose();
    }
  }

  /**
   * Backward, stage by stage in reverse and pipelined like the forward: micro-batch m's expert
   * backward runs on the devices while the coordinator differentiates micro-batch m+1's stage.
   * Each stage's objective is its loss terms (scaled by 1/M) plus Σ⟨out, ∂L/∂out⟩.
   */
  private async backward(recs: MicroRecord[]): Promise<void> {
    const M = recs.length;
    const S = recs[0]!.inputs.length - 1;
    const names = this.paramNames;
    const pending: (Promise<{ grad: Float32Array; timing: ExchangeTiming }> | undefined)[] = new Array(M);
    const partial: ({ h: tf.Tensor; logits: tf.Tensor; shared?: tf.Tensor } | undefined)[] = new Array(M);
    try {
      for (let k = S; k >= 0; k--) {
        const pnames = (this.stageNames[k] ??= stageParams(this.config, k, names));
        for (let m = 0; m < M; m++) {
          const rec = recs[m]!;
          let upstream: Upstream | undefined;
          if (k < S) {
            PROFILE?.at(m, k, 'bwd');
            const busy = this.dispatcher.busyMs;
            const tw = performance.now();
            PROFILE?.begin('wait', 'wait');
            const back = await pending[m]!;
            PROFILE?.end();
            const idleMs = performance.now() - tw - (this.dispatcher.busyMs - busy);
            PROFILE?.begin('combine_grads_in');
            pending[m] = undefined;
            addBackwardTiming(rec.layers[k]!, back.timing);
            rec.layers[k]!.wait_ms += back.timing.waitMs ?? idleMs;
            upstream = { ...partial[m]!, u: tf.tensor2d(back.grad, partial[m]!.h.shape as [number, number]) };
            partial[m] = undefined;
            PROFILE?.end();
          }
          PROFILE?.at(m, k, 'bwd');
          PROFILE?.begin('stage_backward');
          const grads = stageGradients(rec.inputs[k], rec.tapes[k]!, pnames.map((n) => this.weights.get(n)!), upstream);
          PROFILE?.end();
          if (upstream) tf.dispose([upstream.h, upstream.u, upstream.logits, ...(upstream.shared ? [upstream.shared] : [])]);
          const input = rec.inputs[k];
          const nOut = input ? input.outputs.length : 0;
          const nIn = input ? 2 + nOut + (input.shared ? 1 : 0) : 0;
          if (input) {
            // the devices start this micro-batch's expert backward now
            PROFILE?.at(m, k - 1, 'bwd');
            PROFILE?.begin('expert_grads_out');
            const gradOutputs = interleave(grads.slice(2, 2 + nOut), this.config.model.d_model);
            PROFILE?.end();
            pending[m] = early(this.dispatcher.backward(k - 1, m, rec.plans[k - 1]!, gradOutputs, rec.ctx.step));
            PROFILE?.begin('release_inputs');
            partial[m] = { h: grads[0]!, logits: grads[1]!, ...(input.shared ? { shared: grads[2 + nOut]! } : {}) };
            tf.dispose(grads.slice(2, 2 + nOut));
            tf.dispose([input.h, input.logits, ...input.outputs, ...(input.shared ? [input.shared] : [])]);
            disposeConstants(input.routing);
            rec.inputs[k] = undefined;
            PROFILE?.end();
          }
          PROFILE?.begin('grad_accumulate');
          pnames.forEach((n, i) => {
            const acc = this.grads.get(n)!;
            const g = readView(grads[nIn + i]!);
            for (let j = 0; j < acc.length; j++) acc[j]! += g[j]!;
          });
          tf.dispose(grads.slice(nIn));
          PROFILE?.end();
        }
      }
    } catch (e) {
      await Promise.allSettled(pending.filter((p) => p !== undefined));
      tf.dispose(partial.flatMap((p) => (p ? [p.h, p.logits, ...(p.shared ? [p.shared] : [])] : [])));
      for (const rec of recs) this.releaseInputs(rec);
      throw e;
    }
  }

  /** Cross-entropy of a batch without gradients (eval capacity factor, no jitter, no dropout), and how each Switch layer routed it. */
  async evaluate(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<EvalResult> {
    const ctxs = this.contexts(x, y, batch, step, 'eval');
    try {
      const recs = await this.forward(ctxs);
      for (const rec of recs) this.releaseInputs(rec);
      const layers = recs[0]!.layers.map((_, l) => mergeLayerStats(recs.map((r) => r.layers[l]!)));
      return { ce: recs.reduce((a, r) => a + r.ce, 0) / recs.length, layers, plans: recs.map((r) => r.plans), probs: recs.map((r) => r.probs) };
    } finally {
      for (const c of ctxs) c.dispose();
    }
  }

  /** Next-token logits after the last position of one sequence (for sampling), [V]; routed without drops. */
  async nextTokenLogits(x: Int32Array, step: number): Promise<{ logits: Float32Array; layers: LayerStats[] }> {
    const ctx = new StepContext(this.config, 1, 'generate', step, x);
    try {
      const [rec] = (await this.forward([ctx])) as [MicroRecord];
      this.releaseInputs(rec);
      const logits = tf.tidy(() => lmLogits(tf.slice(rec.h!, [x.length - 1, 0], [1, -1]) as tf.Tensor2D, this.weights));
      rec.h!.dispose();
      const out = logits.dataSync() as Float32Array;
      logits.dispose();
      return { logits: out, layers: rec.layers };
    } finally {
      ctx.dispose();
    }
  }

  private releaseInputs(rec: MicroRecord): void {
    for (const inp of rec.inputs) if (inp) {
      tf.dispose([inp.h, inp.logits, ...inp.outputs, ...(inp.shared ? [inp.shared] : [])]);
      disposeConstants(inp.routing);
    }
    rec.inputs = [];
    for (const t of rec.tapes) {
      tf.dispose(t.value.loss);
      release(t);
    }
    rec.tapes = [];
  }

  zeroGrads(): void {
    for (const g of this.grads.values()) g.fill(0);
  }

  dispose(): void {
    tf.dispose([...this.weights.values()]);
    this.weights.clear();
  }
}
