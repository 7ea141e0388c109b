import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import { lmLogits, type Weights } from '../../core/model/blocks.js';
import { trainedNames, type ParamSet } from '../../core/model/params.js';
import { PROFILE } from '../../core/instrument/recorder.js';
import { RouterState } from '../../core/model/router-state.js';
import type { RoutingPlan } from '../../core/router/plan.js';
import type { GroupRange, RouteMode } from '../../core/router/route.js';
import { mergeLayerStats, type LayerStats } from './layer-stats.js';
import { StepContext } from './step-context.js';
import type { Exchanger } from './switch-dispatch.js';
import { forwardPass, releaseInputs, type MicroRecord } from './forward-pass.js';
import { backwardPass } from './backward-pass.js';

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

/**
 * `parallel.layout: spmd`: this engine is replica `rank` of `count`, and runs only its shard of each batch
 * (routing group `rank`).
 */
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
  private contexts(
    x: Int32Array, y: Int32Array | undefined, batch: number, step: number, mode: RouteMode,
  ): StepContext[] {
    // a replica's shard: `batch` sequences from sequence rank·batch of the step's batch (its draws are theirs)
    if (this.shard) return [new StepContext(this.config, batch, mode, step, x, y, 0, this.shard.rank * batch)];
    const M = batch % this.config.parallel.devices === 0 ? this.config.parallel.microbatches : 1;
    const per = x.length / M;
    return Array.from({ length: M }, (_, m) =>
      new StepContext(
        this.config, batch / M, mode, step, x.subarray(m * per, (m + 1) * per), y?.subarray(m * per, (m + 1) * per), m,
        (m * batch) / M,
      ));
  }

  /** Routing groups of micro-batch m: the step's G groups (G = devices) split evenly. */
  private groups(ctx: StepContext, M: number): GroupRange {
    if (this.shard) return { offset: this.shard.rank, count: 1 };
    const D = this.config.parallel.devices;
    const G = (ctx.batch * M) % D === 0 ? D : 1;
    return { offset: (ctx.micro * G) / M, count: G / M };
  }

  /** The micro-batches' forward, pipelined with the devices' expert work (forward-pass.ts). */
  private forward(ctxs: StepContext[]): Promise<MicroRecord[]> {
    const { config, params, weights, dispatcher, routing } = this;
    const groups = (ctx: StepContext, M: number) => this.groups(ctx, M);
    return forwardPass(
      { config, params, weights, dispatcher, routing, replicas: this.shard?.count ?? 1, groups }, ctxs,
    );
  }

  /**
   * Aux-free balancing after a training step (`load[k][e]`: Switch layer k's tokens per expert over the whole
   * step).
   */
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

  /** The micro-batches' backward, in reverse and pipelined like the forward (backward-pass.ts). */
  private backward(recs: MicroRecord[]): Promise<void> {
    const { config, weights, dispatcher, paramNames, stageNames, grads } = this;
    return backwardPass({ config, weights, dispatcher, paramNames, stageNames, grads }, recs);
  }

  /**
   * Cross-entropy of a batch without gradients (eval capacity factor, no jitter, no dropout), and how each
   * Switch layer routed it.
   */
  async evaluate(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<EvalResult> {
    const ctxs = this.contexts(x, y, batch, step, 'eval');
    try {
      const recs = await this.forward(ctxs);
      for (const rec of recs) releaseInputs(rec);
      const layers = recs[0]!.layers.map((_, l) => mergeLayerStats(recs.map((r) => r.layers[l]!)));
      return {
        ce: recs.reduce((a, r) => a + r.ce, 0) / recs.length, layers, plans: recs.map((r) => r.plans),
        probs: recs.map((r) => r.probs),
      };
    } finally {
      for (const c of ctxs) c.dispose();
    }
  }

  /** Next-token logits after the last position of one sequence (for sampling), [V]; routed without drops. */
  async nextTokenLogits(x: Int32Array, step: number): Promise<{ logits: Float32Array; layers: LayerStats[] }> {
    const ctx = new StepContext(this.config, 1, 'generate', step, x);
    try {
      const [rec] = (await this.forward([ctx])) as [MicroRecord];
      releaseInputs(rec);
      const logits = tf.tidy(() => lmLogits(tf.slice(rec.h!, [x.length - 1, 0], [1, -1]) as tf.Tensor2D, this.weights));
      rec.h!.dispose();
      const out = logits.dataSync() as Float32Array;
      logits.dispose();
      return { logits: out, layers: rec.layers };
    } finally {
      ctx.dispose();
    }
  }

  zeroGrads(): void {
    for (const g of this.grads.values()) g.fill(0);
  }

  dispose(): void {
    tf.dispose([...this.weights.values()]);
    this.weights.clear();
  }
}
