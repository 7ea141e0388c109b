import { ConfigError } from './errors.js';

/**
 * Which blocks each pipeline rank and virtual stage builds, by Megatron-Core's rules (NVIDIA/Megatron-LM,
 * megatron/core/transformer/transformer_config.py `TransformerConfig.__post_init__` for the checks,
 * transformer_block.py `get_num_layers_to_build` for the counts, transformer_layer.py
 * `get_transformer_layer_offset` for where each chunk starts):
 *   - first/last counts: rank 0 builds `first`, rank pp − 1 builds `last`, the ranks between share the rest
 *     equally; each count (and each middle rank's share) a multiple of vpp; not together with the accounting;
 *   - embedding/loss accounting: each takes one block's slot, so layers + 1 (+ 1) must divide by pp and each
 *     rank's slots by vpp; the first virtual stage of rank 0 (the last of rank pp − 1) builds one block fewer;
 *   - otherwise layers / (pp · vpp) blocks per chunk.
 * Chunks hold consecutive blocks in execution order: virtual stage 0 of ranks 0 … pp − 1, then stage 1, …
 * Departure: where pp · vpp does not divide the layers and neither first/last counts nor accounting are
 * given, Megatron-Core refuses; here the first layers mod (pp · vpp) chunks take one block more (as
 * switch-sim always did without interleaving, and as PyTorch-native trainers such as NeMo Automodel split).
 */
export interface PipelineSplitInput {
  layers: number;
  pp: number;
  vpp: number;
  /** blocks of the first / last rank; 0: not set */
  first: number;
  last: number;
  /** the embedding / the output layer and loss take a block's slot */
  embedding: boolean;
  loss: boolean;
}

/** One model chunk: pipeline rank `rank`, virtual stage `stage`, blocks [start, start + count). */
export interface PipelineChunk {
  rank: number;
  stage: number;
  start: number;
  count: number;
  /** this chunk holds the embedding (rank 0, stage 0) / the output layer and the loss (last rank, last stage) */
  embedding: boolean;
  loss: boolean;
}

export interface PipelineSplit {
  /** chunks[rank][stage] */
  chunks: PipelineChunk[][];
  /** how the counts were chosen: Megatron-Core's even split, first/last counts, accounting, or the remainder */
  rule: 'even' | 'first_last' | 'accounting' | 'remainder';
}

/** A refused split: the config key it names, the rule as one line, and that key's value. */
export interface SplitRefusal {
  key: string;
  rule: string;
  got: number | boolean;
}

const FIRST = 'plan.decoder_first_pipeline_num_layers';
const LAST = 'plan.decoder_last_pipeline_num_layers';

/** Blocks (or, with accounting, block slots) per [rank][stage], or the first rule the input breaks. */
function slotCounts(s: PipelineSplitInput): { counts: number[][]; rule: PipelineSplit['rule'] } | SplitRefusal {
  const { layers: n, pp: P, vpp: V, first: F, last: L } = s;
  const uneven = F > 0 || L > 0;
  const side = F > 0 ? FIRST : LAST;
  const sideGot = F > 0 ? F : L;
  if (V > 1 && P === 1) return { key: 'plan.vpp', rule: 'must be 1 without pipeline parallelism (plan.pp 1)', got: V };
  if (uneven && (s.embedding || s.loss)) {
    return { key: side, rule: 'must be 0 with plan.account_for_embedding_in_pipeline_split or '
      + 'plan.account_for_loss_in_pipeline_split (Megatron-Core takes one or the other)', got: sideGot };
  }
  if (uneven && P === 1)
    return { key: side, rule: 'must be 0 with plan.pp 1: one rank holds every block', got: sideGot };
  if (F % V !== 0) return { key: FIRST, rule: `must be divisible by plan.vpp (${V})`, got: F };
  if (L % V !== 0) return { key: LAST, rule: `must be divisible by plan.vpp (${V})`, got: L };
  const ranks = (each: (rank: number) => number) =>
    Array.from({ length: P }, (_, r) => new Array<number>(V).fill(each(r) / V));
  if (uneven) {
    const middleRanks = P - (F > 0 ? 1 : 0) - (L > 0 ? 1 : 0);
    const middle = n - F - L;
    const left = `model.n_layers (${n}) − first (${F}) − last (${L}) = ${middle}`;
    if (middleRanks === 0 && middle !== 0) {
      return { key: FIRST, rule: `must add up with ${LAST} (${L}) to model.n_layers (${n}): plan.pp 2 leaves no rank `
        + 'between first and last', got: F };
    }
    if (middleRanks > 0 && middle < middleRanks) {
      return { key: side, rule: `must leave a block for each of the ${middleRanks} ranks between first and last `
        + `(${left})`, got: sideGot };
    }
    if (middleRanks > 0 && middle % middleRanks !== 0) {
      return { key: side, rule: `must leave blocks that the ${middleRanks} ranks between first and last share `
        + `equally (${left})`, got: sideGot };
    }
    const each = middleRanks > 0 ? middle / middleRanks : 0;
    if (each % V !== 0) {
      return { key: 'plan.vpp', rule: `must divide the ${each} blocks of each rank between first and last`, got: V };
    }
    return { counts: ranks((r) => (r === 0 && F > 0 ? F : r === P - 1 && L > 0 ? L : each)), rule: 'first_last' };
  }
  if (s.embedding || s.loss) {
    const slots = n + (s.embedding ? 1 : 0) + (s.loss ? 1 : 0);
    const accounted = s.embedding && s.loss ? 'embedding and loss slots' : s.embedding ? 'embedding slot' : 'loss slot';
    const what = `model.n_layers (${n}) plus the ${accounted}`;
    if (slots % P !== 0) return { key: 'plan.pp', rule: `must divide ${what} (${slots})`, got: P };
    if ((slots / P) % V !== 0) {
      return { key: 'plan.vpp', rule: `must divide each rank's ${slots / P} block slots (${what}, over plan.pp)`,
        got: V };
    }
    return { counts: ranks(() => slots / P), rule: 'accounting' };
  }
  const chunks = P * V;
  if (chunks > n) {
    const what = V > 1 ? `× plan.vpp (${V}) must be at most model.n_layers (${n}): every virtual stage needs a block`
      : `must be at most model.n_layers (${n})`;
    return { key: 'plan.pp', rule: what, got: P };
  }
  const base = Math.floor(n / chunks);
  const extra = n % chunks;
  // chunk i = v · pp + r in layer order; the first `extra` take one block more
  const counts = Array.from({ length: P },
    (_, r) => Array.from({ length: V }, (_, v) => base + (v * P + r < extra ? 1 : 0)));
  return { counts, rule: extra === 0 ? 'even' : 'remainder' };
}

/** The first rule `input` breaks, or undefined when Megatron-Core (with the remainder departure) accepts it. */
export function pipelineSplitRefusal(input: PipelineSplitInput): SplitRefusal | undefined {
  const r = slotCounts(input);
  return 'key' in r ? r : undefined;
}

/** The split of `input`; a refused input throws a one-line ConfigError naming the key, the rule and its value. */
export function pipelineSplit(input: PipelineSplitInput): PipelineSplit {
  const r = slotCounts(input);
  if ('key' in r) throw new ConfigError(`${r.key} ${r.rule} (got ${r.got})`);
  const { pp: P, vpp: V } = input;
  const chunks: PipelineChunk[][] = Array.from({ length: P }, () => []);
  let start = 0;
  for (let stage = 0; stage < V; stage++) {
    for (let rank = 0; rank < P; rank++) {
      const embedding = rank === 0 && stage === 0;
      const loss = rank === P - 1 && stage === V - 1;
      // an accounted embedding or loss fills one of its chunk's slots
      const count = r.counts[rank]![stage]! - (embedding && input.embedding ? 1 : 0) - (loss && input.loss ? 1 : 0);
      chunks[rank]![stage] = { rank, stage, start, count, embedding, loss };
      start += count;
    }
  }
  return { chunks, rule: r.rule };
}

/** The split input of a config's model and plan. */
export const planSplitInput = (c: {
  model: { n_layers: number };
  plan: {
    pp: number; vpp: number; decoder_first_pipeline_num_layers: number; decoder_last_pipeline_num_layers: number;
    account_for_embedding_in_pipeline_split: boolean; account_for_loss_in_pipeline_split: boolean;
  };
}): PipelineSplitInput => ({
  layers: c.model.n_layers, pp: c.plan.pp, vpp: c.plan.vpp,
  first: c.plan.decoder_first_pipeline_num_layers, last: c.plan.decoder_last_pipeline_num_layers,
  embedding: c.plan.account_for_embedding_in_pipeline_split, loss: c.plan.account_for_loss_in_pipeline_split,
});
