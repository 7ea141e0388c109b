import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import type { Weights } from '../../core/model/blocks.js';
import { readView } from '../../core/backend/view.js';
import { stageParams } from '../../core/model/stages.js';
import { PROFILE } from '../../core/instrument/recorder.js';
import { disposeConstants } from '../../core/router/gates.js';
import { addBackwardTiming } from './layer-stats.js';
import { early, interleave } from './rows.js';
import { stageGradients, type Upstream } from './stage-tape.js';
import type { ExchangeTiming, Exchanger } from './switch-dispatch.js';
import { releaseInputs, type MicroRecord } from './forward-pass.js';

/** What the backward pass reads from its engine, and where the dense gradients accumulate. */
export interface BackwardDeps {
  config: Config;
  weights: Weights;
  dispatcher: Exchanger;
  /** every parameter's name, in the order stageParams filters them */
  paramNames: string[];
  /** per stage: the parameters it reads, filled in on first use */
  stageNames: string[][];
  /** dense gradients, summed into */
  grads: Map<string, Float32Array>;
}

/**
 * Backward, stage by stage in reverse and pipelined like the forward: micro-batch m's expert
 * backward runs on the devices while the coordinator differentiates micro-batch m+1's stage.
 * Each stage's objective is its loss terms (scaled by 1/M) plus Σ⟨out, ∂L/∂out⟩.
 */
export async function backwardPass(p: BackwardDeps, recs: MicroRecord[]): Promise<void> {
  const { config, dispatcher } = p;
  const M = recs.length;
  const S = recs[0]!.inputs.length - 1;
  const pending: (Promise<{ grad: Float32Array; timing: ExchangeTiming }> | undefined)[] = new Array(M);
  const partial: ({ h: tf.Tensor; logits: tf.Tensor; shared?: tf.Tensor } | undefined)[] = new Array(M);
  try {
    for (let k = S; k >= 0; k--) {
      const pnames = (p.stageNames[k] ??= stageParams(config, k, p.paramNames));
      for (let m = 0; m < M; m++) {
        const rec = recs[m]!;
        let upstream: Upstream | undefined;
        if (k < S) {
          PROFILE?.at(m, k, 'bwd');
          const busy = dispatcher.busyMs;
          const tw = performance.now();
          PROFILE?.begin('wait', 'wait');
          const back = await pending[m]!;
          PROFILE?.end();
          const idleMs = performance.now() - tw - (dispatcher.busyMs - busy);
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
        const grads = stageGradients(rec.inputs[k], rec.tapes[k]!, pnames.map((n) => p.weights.get(n)!), upstream);
        PROFILE?.end();
        if (upstream) tf.dispose([
          upstream.h, upstream.u, upstream.logits, ...(upstream.shared ? [upstream.shared] : []),
        ]);
        const input = rec.inputs[k];
        const nOut = input ? input.outputs.length : 0;
        const nIn = input ? 2 + nOut + (input.shared ? 1 : 0) : 0;
        if (input) {
          // the devices start this micro-batch's expert backward now
          PROFILE?.at(m, k - 1, 'bwd');
          PROFILE?.begin('expert_grads_out');
          const gradOutputs = interleave(grads.slice(2, 2 + nOut), config.model.d_model);
          PROFILE?.end();
          pending[m] = early(dispatcher.backward(k - 1, m, rec.plans[k - 1]!, gradOutputs, rec.ctx.step));
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
          const acc = p.grads.get(n)!;
          const g = readView(grads[nIn + i]!);
          for (let j = 0; j < acc.length; j++) acc[j]! += g[j]!;
        });
        tf.dispose(grads.slice(nIn));
        PROFILE?.end();
      }
    }
  } catch (e) {
    await Promise.allSettled(pending.filter((q) => q !== undefined));
    tf.dispose(partial.flatMap((q) => (q ? [q.h, q.logits, ...(q.shared ? [q.shared] : [])] : [])));
    for (const rec of recs) releaseInputs(rec);
    throw e;
  }
}
