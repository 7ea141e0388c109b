import type { Plan } from './context.js';

/** The plan keys of a pipeline split. */
export type PipelinePatch = Pick<Plan, 'pp' | 'vpp' | 'decoder_first_pipeline_num_layers' | 'decoder_last_pipeline_num_layers'
  | 'account_for_embedding_in_pipeline_split' | 'account_for_loss_in_pipeline_split'>;

/** What a pipeline split may be: pp and vpp values, and (when narrowed) the split keys' values. */
export interface PipelineChoices {
  layers: number;
  pp: number[];
  vpp: number[];
  first?: number[];
  last?: number[];
  embedding?: boolean[];
  loss?: boolean[];
}

const shape = (pp: number, vpp: number, first = 0, last = 0, embedding = false, loss = false): PipelinePatch => ({
  pp, vpp, decoder_first_pipeline_num_layers: first, decoder_last_pipeline_num_layers: last,
  account_for_embedding_in_pipeline_split: embedding, account_for_loss_in_pipeline_split: loss,
});

/**
 * The uneven splits worth trying for pp ranks of vpp virtual stages: first and last both set (one of them alone
 * builds the same blocks as both with the other at the middle share), each a multiple of vpp, neither heavier than
 * a middle rank, the middle ranks at the even share rounded up (to a multiple of vpp); of those, the lightest first
 * rank and the lightest last rank (the first holds the most micro-batches' activations, the last the output layer
 * and the loss). 61 layers on pp 16: middle ranks of 4, first + last = 5: (1, 4) and (4, 1). With pp 2 (no middle
 * rank) first + last = layers, as balanced as vpp allows. The even split itself (first = last = middle) is not one.
 */
export function unevenSplits(layers: number, pp: number, vpp: number): [number, number][] {
  if (pp < 2) return [];
  const pairs: [number, number][] = [];
  if (pp === 2) {
    for (let f = vpp; f < layers; f += vpp) if ((layers - f) % vpp === 0 && f !== layers - f) pairs.push([f, layers - f]);
    const best = Math.min(...pairs.map(([f, l]) => Math.max(f, l)));
    return extremes(pairs.filter(([f, l]) => Math.max(f, l) === best));
  }
  const share = vpp * Math.ceil(layers / pp / vpp);
  const ends = layers - share * (pp - 2);
  for (let f = vpp; f <= share; f += vpp) {
    const l = ends - f;
    if (l >= vpp && l <= share && l % vpp === 0 && !(f === share && l === share)) pairs.push([f, l]);
  }
  return extremes(pairs);
}

/** The pair with the lightest first rank and the one with the lightest last rank (pairs in increasing first). */
const extremes = (pairs: [number, number][]): [number, number][] =>
  pairs.length <= 2 ? pairs : [pairs[0]!, pairs[pairs.length - 1]!];

const allowed = <T>(list: T[] | undefined, v: T) => list === undefined || list.includes(v);

/**
 * Every pipeline split the search considers, pp outermost: the even split, the embedding slot, the loss slot, both
 * slots (pp > 1: with one rank they change nothing), and the useful uneven splits; those Megatron-Core refuses are
 * counted as refused later (rules.ts). Narrowed split keys keep the shapes whose values they list, and add the listed
 * first/last pairs themselves.
 */
export function pipelineShapes(c: PipelineChoices): PipelinePatch[] {
  const out: PipelinePatch[] = [];
  for (const pp of c.pp) {
    for (const vpp of c.vpp) {
      const slots = pp > 1 ? [shape(pp, vpp, 0, 0, true), shape(pp, vpp, 0, 0, false, true), shape(pp, vpp, 0, 0, true, true)] : [];
      const shapes = [shape(pp, vpp), ...slots, ...unevenSplits(c.layers, pp, vpp).map(([f, l]) => shape(pp, vpp, f, l))];
      if (c.first || c.last) {
        for (const f of c.first ?? [0]) for (const l of c.last ?? [0]) shapes.push(shape(pp, vpp, f, l));
      }
      const seen = new Set<string>();
      for (const s of shapes) {
        const key = `${s.decoder_first_pipeline_num_layers},${s.decoder_last_pipeline_num_layers},`
          + `${s.account_for_embedding_in_pipeline_split},${s.account_for_loss_in_pipeline_split}`;
        if (seen.has(key)) continue;
        seen.add(key);
        if (allowed(c.first, s.decoder_first_pipeline_num_layers) && allowed(c.last, s.decoder_last_pipeline_num_layers)
          && allowed(c.embedding, s.account_for_embedding_in_pipeline_split)
          && allowed(c.loss, s.account_for_loss_in_pipeline_split)) out.push(s);
      }
    }
  }
  return out;
}
