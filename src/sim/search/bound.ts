import { pipelineSplit, planSplitInput } from '../../core/config/pipeline-split.js';
import { blockParams, isSwitchBlock, outerParams } from '../../core/model/params.js';
import { valueBytes } from '../compute.js';
import { paramBytes } from '../param-bytes.js';
import type { Plan, SearchContext } from './context.js';

/**
 * A lower bound on the memory of a plan's busiest GPU (memory.ts's memoryUse), GB, from sums made once per search:
 * it never exceeds what the full model says (test/search-bound.test.ts holds it against memoryUse plan by plan), so
 * pruning by it never drops a plan that fits. Per pipeline rank:
 *   parameters, gradients and optimizer state of its blocks' norms, dense FFNs (routers and shared experts) and
 *     routed experts (the embedding on the first rank, the head on the last), dense ÷ tp and experts ÷ (ep · etp),
 *     sharded over the widest group that could hold them (dense: dp · cp); attention's left out (MLA replicates
 *     its down-projections over tp: a share that depends on the layout), as multi-token prediction's extra block;
 *   activations of the micro-batches 1F1B keeps in flight there, max(1, min(m, pp) − rank), of mb · seq / cp tokens,
 *     at the least any recompute keeps per token and block (in bf16 bytes, scaled to the value size, ÷ tp): its
 *     input, 2h; with no recompute also the two norms' and attention's inputs and each routed copy's input,
 *     (6 + 2k)·h (dense blocks 8h); with selective recompute that leaves the MoE layer whole, each routed copy's
 *     input (the experts' GEMMs keep it), 2k·h;
 *   nothing for the all-to-all's buffers and the logits (transient).
 */
export interface BoundSums {
  /** per block: dense and expert parameters */
  dense: number[];
  experts: number[];
  switchBlock: boolean[];
  embedding: number;
  head: number;
}

export function boundSums(ctx: SearchContext): BoundSums {
  const c = ctx.config;
  const blocks = Array.from({ length: ctx.layers }, (_, l) => blockParams(c, l));
  const outer = outerParams(c, ctx.vocab);
  return {
    dense: blocks.map((b) => b.norms + b.ffn), experts: blocks.map((b) => b.experts),
    switchBlock: blocks.map((_, l) => isSwitchBlock(c, l)), embedding: outer.embedding, head: outer.head,
  };
}

/** Per pipeline rank: its blocks' dense and expert parameters and activation units (h per token, before ÷ tp). */
interface RankSums {
  dense: number[];
  experts: number[];
  /** Σ over its blocks of the no-recompute floor in units of h: 6 + 2k (Switch) or 8 (dense) */
  noRecompute: number[];
  /** Σ over its blocks of the floor with selective recompute that keeps the MoE layer: 2k (Switch) or 2 (dense) */
  selective: number[];
  blocks: number[];
}

function rankSums(ctx: SearchContext, sums: BoundSums, p: Plan): RankSums {
  const split = pipelineSplit(planSplitInput({ model: { n_layers: ctx.layers }, plan: p }));
  const k = ctx.config.moe.top_k;
  const out: RankSums = { dense: [], experts: [], noRecompute: [], selective: [], blocks: [] };
  split.chunks.forEach((chunks, rank) => {
    let dense = (rank === 0 ? sums.embedding : 0) + (rank === p.pp - 1 ? sums.head : 0);
    let experts = 0;
    let floor = 0;
    let selective = 0;
    let blocks = 0;
    for (const chunk of chunks) {
      for (let l = chunk.start; l < chunk.start + chunk.count; l++) {
        dense += sums.dense[l]!;
        experts += sums.experts[l]!;
        floor += sums.switchBlock[l] ? 6 + 2 * k : 8;
        selective += sums.switchBlock[l] ? Math.max(2, 2 * k) : 2;
        blocks++;
      }
    }
    out.dense.push(dense);
    out.experts.push(experts);
    out.noRecompute.push(floor);
    out.selective.push(selective);
    out.blocks.push(blocks);
  });
  return out;
}

/** The bound for plans of one search: rank sums made once per pipeline split. */
export function memoryBound(ctx: SearchContext): (p: Plan) => number {
  const sums = boundSums(ctx);
  const bySplit = new Map<string, RankSums>();
  const vb = valueBytes(ctx.cluster);
  const bytes = paramBytes(vb);
  const h = ctx.config.model.d_model;
  return (p) => {
    const key = `${p.pp},${p.vpp},${p.decoder_first_pipeline_num_layers},${p.decoder_last_pipeline_num_layers},`
      + `${p.account_for_embedding_in_pipeline_split},${p.account_for_loss_in_pipeline_split}`;
    let r = bySplit.get(key);
    if (!r) bySplit.set(key, (r = rankSums(ctx, sums, p)));
    const dpAll = ctx.gpus / (p.tp * p.pp);
    const edp = ctx.gpus / (p.ep * p.etp * p.pp);
    const micro = ctx.globalBatch / (p.micro_batch * (ctx.gpus / (p.tp * p.cp * p.pp)));
    const tokens = (p.micro_batch * ctx.seq) / p.cp;
    let worst = 0;
    for (let s = 0; s < p.pp; s++) {
      const dense = r.dense[s]! / p.tp;
      const experts = r.experts[s]! / (p.ep * p.etp);
      const sharded = dense / dpAll + experts / edp;
      const state = p.shard === 'full' ? (bytes.weight + bytes.grad + bytes.optimizer) * sharded
        : (bytes.weight + bytes.grad) * (dense + experts) + bytes.optimizer * (p.shard === 'optimizer' ? sharded : dense + experts);
      const units = p.recompute === 'none' ? r.noRecompute[s]!
        : p.recompute === 'selective' && !p.recompute_modules.includes('moe') ? r.selective[s]!
          : 2 * r.blocks[s]!;
      const activations = ((units * h * (vb / 2)) / p.tp) * tokens * Math.max(1, Math.min(micro, p.pp) - s);
      worst = Math.max(worst, state + activations);
    }
    return worst / 1e9;
  };
}
