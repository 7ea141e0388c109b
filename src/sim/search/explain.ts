import { megatronLine } from '../../core/config/megatron-emit.js';
import type { Config } from '../../core/config/defaults.js';
import type { Breakdown } from '../project.js';
import type { Plan } from './context.js';
import type { SearchedPlan } from './search.js';

/** The plan in one line: its parallel sizes and choices, the pipeline split where it is not the even one. */
export function planLine(p: Plan): string {
  const split = [
    p.decoder_first_pipeline_num_layers ? `first ${p.decoder_first_pipeline_num_layers}` : '',
    p.decoder_last_pipeline_num_layers ? `last ${p.decoder_last_pipeline_num_layers}` : '',
    p.account_for_embedding_in_pipeline_split ? 'embedding slot' : '', p.account_for_loss_in_pipeline_split ? 'loss slot' : '',
  ].filter((x) => x);
  const recompute = p.recompute === 'selective' ? `selective ${p.recompute_modules.join('+') || 'core_attn'}` : p.recompute;
  return [`tp ${p.tp}`, `cp ${p.cp}`, `pp ${p.pp}${split.length ? ` (${split.join(', ')})` : ''}`, `vpp ${p.vpp}`, `ep ${p.ep}`,
    `etp ${p.etp}`, `mb ${p.micro_batch}`, `shard ${p.shard}`, `recompute ${recompute}`, `overlap ${p.overlap}`,
    `dispatcher ${p.dispatcher}${p.dispatch_fwd_dtype === 'bf16' ? '' : ` (${p.dispatch_fwd_dtype})`}`,
    ...(p.precision === 'bf16' ? [] : [p.precision]), ...(p.dispatch === 'dropless' ? [] : [p.dispatch]),
    ...(p.redundant_experts ? [`redundant experts ${p.redundant_experts}`] : [])].join(' · ');
}

/** The plan as one line of Megatron-LM flags (megatron-emit.ts), or why it has none. */
export function megatronArgs(config: Config, p: Plan): string {
  try {
    const copies = p.redundant_experts ? ` (and plan.redundant_experts ${p.redundant_experts}: EPLB's placement has no Megatron-LM flag)` : '';
    return megatronLine({ ...config, plan: p }) + copies;
  } catch (e) {
    return `(no Megatron-LM flags: ${(e as Error).message.replace(/^config error: /, '')})`;
  }
}

/** One part of the step where two plans differ. */
export interface TermDifference {
  term: keyof Breakdown;
  best_ms: number;
  other_ms: number;
}

/** Why the best plan beats another: the breakdown's terms that differ, largest difference first, and the plan keys. */
export interface Comparison {
  best_ms: number;
  other_ms: number;
  terms: TermDifference[];
  keys: { key: string; best: unknown; other: unknown }[];
}

export function compare(best: SearchedPlan, other: SearchedPlan): Comparison {
  const terms = (Object.keys(best.breakdown_ms) as (keyof Breakdown)[])
    .map((term) => ({ term, best_ms: best.breakdown_ms[term], other_ms: other.breakdown_ms[term] }))
    .filter((t) => Math.abs(t.best_ms - t.other_ms) > 1e-9)
    .sort((a, b) => Math.abs(b.best_ms - b.other_ms) - Math.abs(a.best_ms - a.other_ms));
  const keys = (Object.keys(best.plan) as (keyof Plan)[])
    .filter((k) => JSON.stringify(best.plan[k]) !== JSON.stringify(other.plan[k]))
    .map((k) => ({ key: `plan.${k}`, best: best.plan[k], other: other.plan[k] }));
  return { best_ms: best.step_ms, other_ms: other.step_ms, terms, keys };
}

const ms = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1));
const show = (v: unknown) => (Array.isArray(v) ? v.join('+') || '[]' : String(v));

/** The comparison in two lines: the terms (best → other, the difference), then the keys. */
export function comparisonLines(c: Comparison, other = '#2'): string[] {
  const gap = c.other_ms - c.best_ms;
  const terms = c.terms.map((t) => `${t.term} ${ms(t.best_ms)} vs ${ms(t.other_ms)} (${t.other_ms > t.best_ms ? '+' : '−'}`
    + `${ms(Math.abs(t.other_ms - t.best_ms))})`);
  const head = gap > 0 ? `why #1 beats ${other} by ${ms(gap)} ms (${((100 * gap) / c.other_ms).toFixed(1)}%)`
    : `#1 and ${other} tie at ${ms(c.best_ms)} ms (#1 comes first in the search's order)`;
  return [
    `${head}: ${terms.join(', ') || 'no term differs'}`,
    `  ${other} differs in ${c.keys.map((k) => `${k.key} ${show(k.other)} (#1: ${show(k.best)})`).join(', ')}`,
  ];
}
