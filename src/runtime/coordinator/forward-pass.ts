import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import type { Weights } from '../../core/model/blocks.js';
import type { ParamSet } from '../../core/model/params.js';
import { release, type Recording } from '../../core/backend/tape.js';
import { readView } from '../../core/backend/view.js';
import { stageCount, switchBlocks, type StageInput, type StageOutput } from '../../core/model/stages.js';
import { PROFILE } from '../../core/instrument/recorder.js';
import { disposeConstants, routerScores, routingConstants } from '../../core/router/gates.js';
import type { RouterState } from '../../core/model/router-state.js';
import type { RoutingPlan } from '../../core/router/plan.js';
import type { GroupRange } from '../../core/router/route.js';
import { layerStats, type LayerStats } from './layer-stats.js';
import type { StepContext } from './step-context.js';
import { early, perChoice } from './rows.js';
import { forwardStage, type RecordedStage } from './stage-tape.js';
import { useFused } from '../../core/model/fused/io.js';
import { scoresOf } from '../../core/model/fused/scores.js';
import type { Exchanger, SwitchForward } from './switch-dispatch.js';

/** One micro-batch's forward: what its backward needs, and what it measured. */
export interface MicroRecord {
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

/** What the forward pass reads from its engine. */
export interface ForwardDeps {
  config: Config;
  params: ParamSet;
  weights: Weights;
  dispatcher: Exchanger;
  routing: RouterState;
  /** replicas the loss terms are shared over (spmd: the device count; else 1) */
  replicas: number;
  /** routing groups of a micro-batch, given the micro-batch count */
  groups: (ctx: StepContext, M: number) => GroupRange;
}

/**
 * Forward, pipelined over micro-batches: stage k of micro-batch m+1 runs on the coordinator while
 * the devices compute the experts of micro-batch m.
 */
export async function forwardPass(p: ForwardDeps, ctxs: StepContext[]): Promise<MicroRecord[]> {
  const { config, dispatcher } = p;
  const S = stageCount(config) - 1;
  const M = ctxs.length;
  const recs: MicroRecord[] = ctxs.map((ctx) => ({
    ctx, inputs: [], tapes: [], plans: [], probs: [], layers: [], ce: 0, balance: 0, z: 0,
  }));
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
          const busy = dispatcher.busyMs;
          const tw = performance.now();
          PROFILE?.begin('wait', 'wait');
          // the coordinator is idle unless an exchange finishes meanwhile (its unpack is subtracted)
          const sw = await pending[m]!;
          PROFILE?.end();
          const idleMs = performance.now() - tw - (dispatcher.busyMs - busy);
          PROFILE?.begin('combine_inputs', 'compute', switchBlocks(config)[k - 1]);
          pending[m] = undefined;
          const block = switchBlocks(config)[k - 1]!;
          const expertGroups = config.moe.route_groups || config.parallel.devices;
          rec.layers.push(layerStats(sw.plan, probs[m]!, sw.timing, {
            expertGroups, bias: p.params.get(`h.${block}.router.bias`)?.data,
          }));
          rec.layers[k - 1]!.wait_ms += sw.timing.waitMs ?? idleMs;
          const prev = carried[m]!;
          const seqLen = config.moe.balance === 'seq_aux_loss' ? rec.ctx.ids.length / rec.ctx.batch : undefined;
          const outputs = perChoice(sw.outputs, sw.plan.topK, config.model.d_model);
          const routing = routingConstants(sw.plan, seqLen);
          input = {
            h: prev.h!, logits: prev.logits!, outputs, routing, ...(prev.shared ? { shared: prev.shared } : {}),
            probs: probs[m],
          };
          PROFILE?.end();
        }
        PROFILE?.at(m, k, 'fwd');
        PROFILE?.begin(`stage_forward`, 'compute');
        // loss terms ÷ micro-batches (and replicas)
        const out = forwardStage(k, input, p.weights, rec.ctx, M * p.replicas);
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
        const block = switchBlocks(config)[k]!;
        PROFILE?.begin('router_softmax', 'compute', block);
        if (useFused(config)) probs[m] = scoresOf(out.logits!, config.moe);
        else {
          const probsT = routerScores(out.logits!, config.moe);
          probs[m] = probsT.dataSync() as Float32Array; // router scores (softmax or sigmoid), float32 [N, E]
          probsT.dispose();
        }
        PROFILE?.end();
        PROFILE?.begin('routing_plan', 'compute', block);
        const plan = dispatcher.route(
          k, probs[m]!, rec.ctx.mode, rec.ctx.step, p.groups(rec.ctx, M), p.routing.inputs(block, rec.ctx.ids),
        );
        PROFILE?.end();
        rec.plans.push(plan);
        rec.probs.push(probs[m]!);
        // packed before it returns
        pending[m] = early(dispatcher.forward(k, m, plan, readView(out.u!), rec.ctx.train, rec.ctx.step));
        out.u!.dispose();
        carried[m] = out;
      }
    }
  } catch (e) {
    await Promise.allSettled(pending.filter((q) => q !== undefined));
    tf.dispose(carried.flatMap((o) => (o ? [
      o.h, o.logits, o.shared,
    ].filter((t): t is tf.Tensor2D => t !== undefined) : [])));
    for (const rec of recs) releaseInputs(rec);
    throw e;
  }
  return recs;
}

/** Frees what a micro-batch's forward kept for its backward (stage inputs and tapes). */
export function releaseInputs(rec: MicroRecord): void {
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
