import * as tf from '@tensorflow/tfjs';
import type { Config } from '../config/defaults.js';
import type { LayerBuffers } from '../comm/buffers.js';
import type { ExpertDevice } from '../experts/device.js';
import { lmLogits, type Weights } from '../model/blocks.js';
import { toTensors, type ParamSet } from '../model/params.js';
import { runStage, stageCount, stageParams, type StageInput, type StageOutput } from '../model/stages.js';
import { disposeConstants, routingConstants } from '../router/gates.js';
import type { RoutingPlan } from '../router/plan.js';
import { addBackwardTiming, layerStats, type LayerStats } from './layer-stats.js';
import { StepContext } from './step-context.js';
import { SwitchDispatcher } from './switch-dispatch.js';

export interface StepResult {
  loss: number;
  ce: number;
  balance_loss: number;
  z_loss: number;
  layers: LayerStats[];
}

interface ForwardRecord {
  inputs: (StageInput | undefined)[];
  plans: RoutingPlan[];
  layers: LayerStats[];
  ce: number;
  balance: number;
  z: number;
  /** final residual stream when no targets were given (sampling), [N, d] */
  h?: tf.Tensor2D;
}

/** Splits [N·k, d] token-choice rows into k tensors of [N, d]. */
function perChoice(rows: Float32Array, k: number, d: number): tf.Tensor2D[] {
  const N = rows.length / k / d;
  return Array.from({ length: k }, (_, c) => {
    const out = new Float32Array(N * d);
    for (let t = 0; t < N; t++) out.set(rows.subarray((t * k + c) * d, (t * k + c + 1) * d), t * d);
    return tf.tensor2d(out, [N, d]);
  });
}

/** Interleaves k gradients of [N, d] back into [N·k, d] token-choice rows. */
function interleave(grads: tf.Tensor[], d: number): Float32Array {
  const k = grads.length;
  const data = grads.map((g) => g.dataSync());
  const N = data[0]!.length / d;
  const out = new Float32Array(N * k * d);
  for (let t = 0; t < N; t++) for (let c = 0; c < k; c++) out.set(data[c]!.subarray(t * d, (t + 1) * d), (t * k + c) * d);
  return out;
}

/**
 * The coordinator's compute: runs the stages, the Switch layers' all-to-alls in between, and the
 * backward pass stage by stage in reverse, chaining gradients across the asynchronous expert work.
 * Parameter gradients of the coordinator's weights accumulate in `grads`.
 */
export class Engine {
  readonly grads = new Map<string, Float32Array>();
  private weights: Weights = new Map();
  private readonly dispatcher: SwitchDispatcher;

  constructor(
    readonly config: Config,
    readonly params: ParamSet,
    readonly devices: ExpertDevice[],
    buffers: LayerBuffers[],
  ) {
    this.dispatcher = new SwitchDispatcher(config, devices, buffers);
    for (const [k, p] of params) this.grads.set(k, new Float32Array(p.data.length));
    this.refresh();
  }

  /** Re-uploads the weights after the optimizer changed them. */
  refresh(): void {
    tf.dispose([...this.weights.values()]);
    this.weights = toTensors(this.params);
  }

  private async forward(ctx: StepContext): Promise<ForwardRecord> {
    const S = stageCount(this.config) - 1;
    const rec: ForwardRecord = { inputs: [], plans: [], layers: [], ce: 0, balance: 0, z: 0 };
    let input: StageInput | undefined;
    for (let k = 0; k <= S; k++) {
      const out: StageOutput = tf.tidy(() => runStage(k, input, this.weights, ctx) as unknown as tf.NamedTensorMap) as StageOutput;
      rec.inputs.push(input);
      rec.balance += out.balance?.dataSync()[0] ?? 0;
      rec.z += out.z?.dataSync()[0] ?? 0;
      tf.dispose([out.balance, out.z].filter((t): t is tf.Scalar => t !== undefined));
      if (k === S) {
        if (out.ce) rec.ce = out.ce.dataSync()[0]!;
        tf.dispose(out.ce);
        rec.h = out.h;
        break;
      }
      const probsT = tf.softmax(out.logits!);
      const probs = probsT.dataSync() as Float32Array; // router probabilities, float32 [N, E]
      probsT.dispose();
      const plan = this.dispatcher.route(k, probs, ctx.train, ctx.step);
      const sw = await this.dispatcher.forward(k, plan, out.u!.dataSync() as Float32Array, ctx.train, ctx.step);
      out.u!.dispose();
      rec.plans.push(plan);
      rec.layers.push(layerStats(plan, probs, sw.timing));
      input = { h: out.h!, logits: out.logits!, outputs: perChoice(sw.outputs, plan.topK, this.config.model.d_model), routing: routingConstants(plan) };
    }
    return rec;
  }

  /** Forward and backward for one batch; coordinator gradients accumulate in `grads`, expert ones on the devices. */
  async trainStep(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<StepResult> {
    const ctx = new StepContext(this.config, batch, true, step, x, y);
    try {
      const rec = await this.forward(ctx);
      await this.backward(rec, ctx);
      return { loss: rec.ce + rec.balance + rec.z, ce: rec.ce, balance_loss: rec.balance, z_loss: rec.z, layers: rec.layers };
    } finally {
      ctx.dispose();
    }
  }

  private async backward(rec: ForwardRecord, ctx: StepContext): Promise<void> {
    const S = rec.inputs.length - 1;
    const names = [...this.params.keys()];
    let dy: { h: tf.Tensor; u: tf.Tensor; logits: tf.Tensor } | undefined;
    for (let k = S; k >= 0; k--) {
      const input = rec.inputs[k];
      const pnames = stageParams(this.config, k, names);
      const diff: tf.Tensor[] = input ? [input.h, input.logits, ...input.outputs] : [];
      const nIn = diff.length;
      const upstream = dy;
      // the stage's contribution to the loss, linearised at its outputs: Σ⟨out, ∂L/∂out⟩ + its own loss terms
      const objective = (...args: tf.Tensor[]): tf.Scalar => {
        const w = new Map(this.weights);
        pnames.forEach((n, i) => w.set(n, args[nIn + i]!));
        const inp = input && { ...input, h: args[0] as tf.Tensor2D, logits: args[1] as tf.Tensor2D, outputs: args.slice(2, nIn) as tf.Tensor2D[] };
        const o = runStage(k, inp, w, ctx);
        let total: tf.Tensor = tf.scalar(0);
        for (const t of [o.ce, o.balance, o.z]) if (t) total = total.add(t);
        if (upstream) total = total.add(tf.sum(o.h!.mul(upstream.h))).add(tf.sum(o.u!.mul(upstream.u))).add(tf.sum(o.logits!.mul(upstream.logits)));
        return total as tf.Scalar;
      };
      const grads = tf.grads(objective)([...diff, ...pnames.map((n) => this.weights.get(n)!)]);
      if (upstream) tf.dispose([upstream.h, upstream.u, upstream.logits]);
      dy = undefined;
      // the devices start their backward while the coordinator accumulates its weight gradients
      const layer = k - 1;
      const back = input ? this.dispatcher.backward(layer, rec.plans[layer]!, interleave(grads.slice(2, nIn), this.config.model.d_model)) : undefined;
      pnames.forEach((n, i) => {
        const acc = this.grads.get(n)!;
        const g = grads[nIn + i]!.dataSync();
        for (let j = 0; j < acc.length; j++) acc[j]! += g[j]!;
      });
      if (input && back) {
        let exchanged;
        try {
          exchanged = await back;
        } catch (e) {
          tf.dispose(grads);
          throw e;
        }
        addBackwardTiming(rec.layers[layer]!, exchanged.timing);
        dy = { h: grads[0]!, logits: grads[1]!, u: tf.tensor2d(exchanged.grad, input.h.shape) };
        tf.dispose(grads.slice(2));
        tf.dispose([input.h, input.logits, ...input.outputs]);
        disposeConstants(input.routing);
      } else tf.dispose(grads);
    }
  }

  /** Cross-entropy of a batch without gradients (eval capacity factor, no jitter, no dropout). */
  async evaluate(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<number> {
    const ctx = new StepContext(this.config, batch, false, step, x, y);
    try {
      const rec = await this.forward(ctx);
      this.releaseInputs(rec);
      return rec.ce;
    } finally {
      ctx.dispose();
    }
  }

  /** Next-token logits after the last position of one sequence (for sampling), [V]. */
  async nextTokenLogits(x: Int32Array, step: number): Promise<Float32Array> {
    const ctx = new StepContext(this.config, 1, false, step, x);
    try {
      const rec = await this.forward(ctx);
      this.releaseInputs(rec);
      const logits = tf.tidy(() => lmLogits(tf.slice(rec.h!, [x.length - 1, 0], [1, -1]) as tf.Tensor2D, this.weights));
      rec.h!.dispose();
      const out = logits.dataSync() as Float32Array;
      logits.dispose();
      return out;
    } finally {
      ctx.dispose();
    }
  }

  private releaseInputs(rec: ForwardRecord): void {
    for (const inp of rec.inputs) if (inp) {
      tf.dispose([inp.h, inp.logits, ...inp.outputs]);
      disposeConstants(inp.routing);
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
