import type { Config } from '../core/config/defaults.js';
import type { Cluster } from './cluster.js';
import { computeUs, kernelCount, valueBytes } from './compute.js';
import { headTime } from './block.js';
import { hostBoundUs } from './host.js';
import type { Layout } from './layout.js';
import { backwardOf } from './work.js';
import type { Work } from './work-types.js';

/** What a pipeline rank does beyond its blocks, one micro-batch (µs): the embedding, the output layer and loss, MTP's. */
export interface EndsTime {
  forward_us: number;
  backward_us: number;
  host_us: number;
}

const memory = (bytes: number, kernels: number): Work => ({ kernels: [], attentionFlops: 0, attentionKernels: 0, bytes, fixedUs: 0, memKernels: kernels });

/**
 * The embedding lookup on one GPU's T tokens (vocabulary-parallel: a [V/tp, d] table), b bytes a value:
 *   forward   the T rows gathered: T·d values read and written, one kernel;
 *   backward  PyTorch's dense embedding gradient (aten embedding_dense_backward): the [V/tp, d] gradient zero-filled,
 *             the T rows' gradients added in (read and written, 2·T·d), then Megatron-Core's gradient hook adds it into
 *             the fp32 main gradient (param.main_grad.add_(param.grad): V·d/tp read at b, read and written at 4 + 4):
 *             2·T·d·b + (V·d/tp)·(2b + 8) bytes, three kernels.
 * Memory-bound throughout; the table's size, not the tokens, makes the backward cost what it does.
 */
export function embeddingWork(config: Config, L: Layout, b: number): { forward: Work; backward: Work } {
  const T = L.microBatch * L.seq;
  const d = config.model.d_model;
  const table = (L.vocab * d) / L.tp;
  return { forward: memory(2 * T * d * b, 1), backward: memory(2 * T * d * b + table * (2 * b + 8), 3) };
}

/**
 * One multi-token prediction layer's pieces beyond its block (Megatron-Core's MultiTokenPredictionLayer; research
 * notes §5.6), forward: the norms of the next token's embedding and of the hidden state and the final norm (three,
 * h read and written a token each, on the GPU's T/tp tokens), and the projection of their concatenation, [T, 2h] ·
 * [2h, h/tp] (column-parallel). Its block is one of the rank's (layout.ts); its embedding lookup and output head
 * are the model's shared ones, run once more (endsTime).
 */
export function mtpWork(config: Config, L: Layout, b: number): Work {
  const d = config.model.d_model;
  const T = L.microBatch * L.seq;
  return { ...memory(L.tokensPerGpu * 3 * 2 * d * b, 3), kernels: [[{ m: T, k: 2 * d, n: d / L.tp }]] };
}

/**
 * A rank's ends: the first rank's embedding (embeddingWork); the last rank's output layer and loss (block.ts headTime),
 * and per multi-token prediction layer the embedding and the output layer and loss once more and its own pieces
 * (mtpWork). They run on their rank whatever the split: plan.account_for_embedding_in_pipeline_split and
 * account_for_loss_in_pipeline_split only give them a block's slot there (layout.ts), so that rank holds a block fewer.
 */
export function endsTime(c: Cluster, config: Config, L: Layout, s: number): EndsTime {
  const b = valueBytes(c);
  const out: EndsTime = { forward_us: 0, backward_us: 0, host_us: 0 };
  const add = (forward: Work, backward: Work, times = 1) => {
    const f = computeUs(c, config, forward);
    const g = computeUs(c, config, backward);
    out.forward_us += times * f;
    out.backward_us += times * g;
    out.host_us += times * (hostBoundUs(c, { direction: 'forward', kernels: kernelCount(forward), gpuUs: f })
      + hostBoundUs(c, { direction: 'backward', kernels: kernelCount(backward), gpuUs: g }));
  };
  const emb = embeddingWork(config, L, b);
  if (s === 0) add(emb.forward, emb.backward);
  if (s !== L.pp - 1) return out;
  const D = L.mtpBlocks.length;
  const head = headTime(c, config, L);
  out.forward_us += (1 + D) * head.forward_us;
  out.backward_us += (1 + D) * head.backward_us;
  out.host_us += (1 + D) * head.host_us;
  if (D > 0) {
    add(emb.forward, emb.backward, D);
    const w = mtpWork(config, L, b);
    add(w, backwardOf(w), D);
  }
  return out;
}
