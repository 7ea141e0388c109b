import type { Plan } from './context.js';
import { compare, comparisonLines, megatronArgs, planLine } from './explain.js';
import type { SearchedPlan, SearchResult } from './search.js';

const n = (x: number) => x.toLocaleString('en-US');
const f = (x: number, d = 1) => x.toFixed(d);

/** The plan keys a search chose (the searched keys, not the config's others). */
const PLAN_JSON_KEYS: (keyof Plan)[] = ['tp', 'cp', 'pp', 'vpp', 'decoder_first_pipeline_num_layers', 'decoder_last_pipeline_num_layers',
  'account_for_embedding_in_pipeline_split', 'account_for_loss_in_pipeline_split', 'ep', 'etp', 'micro_batch', 'global_batch',
  'shard', 'recompute', 'recompute_modules', 'overlap', 'dispatcher', 'dispatch_fwd_dtype', 'precision', 'dispatch', 'routing',
  'redundant_experts'];

/** One plan as the JSON line lists it. */
export function planJson(r: SearchResult, p: SearchedPlan, rank: number) {
  return {
    rank, plan: Object.fromEntries(PLAN_JSON_KEYS.map((k) => [k, p.plan[k]])), line: planLine(p.plan),
    megatron_args: megatronArgs(r.context.config, p.plan), step_ms: p.step_ms, tokens_per_s_per_gpu: p.tokens_per_s_per_gpu,
    mfu: p.mfu, memory_gb_per_gpu: p.memory_gb_per_gpu, fits: p.fits, exposed_a2a_ms: p.breakdown_ms.all_to_all,
    bubble_ms: p.breakdown_ms.bubble, bubble_fraction: p.bubble_fraction, straggler_factor: p.straggler_factor,
    breakdown_ms: p.breakdown_ms,
  };
}

/** The last line of `--json`: the counts, and the top plans (every fitting one with top 0), fastest first. */
export function searchJson(r: SearchResult, top: number) {
  const plans = top > 0 ? r.fitting.slice(0, top) : r.fitting;
  return {
    considered: r.considered, rejected: { divisibility: r.refused, memory: r.pruned + r.over },
    projected: r.projected, memory: { by_bound: r.pruned, by_model: r.over },
    threads: r.threads, seconds: r.seconds, plans_per_s: r.projected / r.seconds, plans: plans.map((p, i) => planJson(r, p, i + 1)),
  };
}

/** What a search prints: the counts, the top plans with their flags, why the best beats the runner-up. */
export function searchLines(r: SearchResult, top: number): string[] {
  const ctx = r.context;
  const m = ctx.config.model;
  const lines = [
    `search: ${m.n_layers} layers, ${ctx.experts} experts (top-${ctx.config.moe.top_k}) on ${ctx.cluster.name} (${n(ctx.gpus)} GPUs`
      + `${ctx.memoryGb ? `, ${ctx.memoryGb} GB each` : ''}), global batch ${n(ctx.globalBatch)} × ${n(ctx.seq)} tokens`,
    `considered ${n(r.considered)} plans: ${n(r.refused)} refused (divisibility and Megatron-Core's other rules), `
      + `${n(r.pruned + r.over)} over memory (${n(r.pruned)} by the bound, ${n(r.over)} by the full model), `
      + `${n(r.projected)} projected`,
    `projected in ${f(r.seconds)} s on ${r.threads} thread${r.threads > 1 ? 's' : ''}: ${n(Math.round(r.projected / r.seconds))} plans/s`,
  ];
  const refusals = Object.entries(r.byRule).sort((a, b) => b[1] - a[1]).slice(0, 4);
  if (refusals.length > 0) lines.push(`most refused or pruned by: ${refusals.map(([rule, k]) => `${rule} (${n(k)})`).join('; ')}`);
  const best = top > 0 ? r.fitting.slice(0, top) : r.fitting;
  if (best.length === 0) {
    lines.push('no plan fits: narrow less (--space), or a larger cluster');
    return lines;
  }
  lines.push(`top ${best.length} of ${n(r.fitting.length)} (fastest first):`);
  lines.push(`${'#'.padStart(3)} ${'step ms'.padStart(10)} ${'tok/s/GPU'.padStart(10)} ${'MFU'.padStart(6)} ${'GB/GPU'.padStart(7)} `
    + `${'a2a ms'.padStart(8)} ${'bubble ms'.padStart(10)}  plan`);
  best.forEach((p, i) => {
    lines.push(`${String(i + 1).padStart(3)} ${f(p.step_ms).padStart(10)} ${f(p.tokens_per_s_per_gpu, 0).padStart(10)} `
      + `${`${f(100 * p.mfu)}%`.padStart(6)} ${f(p.memory_gb_per_gpu).padStart(7)} ${f(p.breakdown_ms.all_to_all).padStart(8)} `
      + `${f(p.breakdown_ms.bubble).padStart(10)}  ${planLine(p.plan)}`);
    lines.push(`${' '.repeat(4)}${megatronArgs(ctx.config, p.plan)}`);
  });
  if (r.fitting.length > 1) lines.push(...comparisonLines(compare(r.fitting[0]!, r.fitting[1]!)));
  return lines;
}
