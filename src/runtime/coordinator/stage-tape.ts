import tf from '../../core/util/tfjs.cjs';
import { backprop, record, release, type Recording } from '../../core/backend/tape.js';
import type { Weights } from '../../core/model/blocks.js';
import { runStage, type StageContext, type StageInput, type StageOutput } from '../../core/model/stages.js';

/** A stage's outputs plus its own loss terms, (ce + balance + z) / M, as one scalar. */
export type RecordedStage = StageOutput & { loss?: tf.Scalar; tape?: Recording<RecordedStage> };

export type Upstream = { h: tf.Tensor; u: tf.Tensor; logits: tf.Tensor; shared?: tf.Tensor };

/** Runs stage k of one of M micro-batches; in training its forward is recorded for stageGradients. */
export function forwardStage(
  k: number, input: StageInput | undefined, weights: Weights, ctx: StageContext & { train: boolean }, M: number,
): RecordedStage {
  const run = (): tf.NamedTensorMap => {
    const o = runStage(k, input, weights, ctx);
    const terms = [o.ce, o.balance, o.z].filter((t): t is tf.Scalar => t !== undefined);
    const loss = terms.length > 0 ? (terms.reduce((a, b) => a.add(b)).mul(1 / M) as tf.Scalar) : undefined;
    return Object.fromEntries(Object.entries({ ...o, loss }).filter(([, t]) => t !== undefined)) as tf.NamedTensorMap;
  };
  if (!ctx.train) {
    const out = tf.tidy(run) as RecordedStage;
    tf.dispose(out.loss);
    return { ...out, loss: undefined };
  }
  const tape = record(run) as unknown as Recording<RecordedStage>;
  return { ...tape.value, tape };
}

/**
 * Back-propagates stage k's recorded forward from ∂L/∂(h, u, logits, shared) of its outputs and its own
 * loss terms, to its inputs (h, logits, expert outputs, shared) and its weights; then frees the recording.
 */
export function stageGradients(
  input: StageInput | undefined, tape: Recording<RecordedStage>, weights: tf.Tensor[], upstream: Upstream | undefined,
): tf.Tensor[] {
  const out = tape.value;
  const one = tf.scalar(1);
  const seeds: [tf.Tensor, tf.Tensor][] = out.loss ? [[out.loss, one]] : [];
  if (upstream) seeds.push([out.h!, upstream.h], [out.u!, upstream.u], [out.logits!, upstream.logits]);
  if (upstream?.shared) seeds.push([out.shared!, upstream.shared]);
  const xs = [
    ...(input ? [input.h, input.logits, ...input.outputs, ...(input.shared ? [input.shared] : [])] : []), ...weights
  ];
  try {
    return backprop(tape, seeds, xs);
  } finally {
    tf.dispose([one, ...(out.loss ? [out.loss] : [])]);
    release(tape);
  }
}
