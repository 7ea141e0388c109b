import { availableParallelism } from 'node:os';
import type { Cluster } from '../cluster.js';
import type { Workload } from '../workload.js';
import { memoryBound } from './bound.js';
import { searchContext, type Plan, type SearchContext } from './context.js';
import { DIMENSIONS, type Narrowing } from './dimensions.js';
import { enumeratePlans } from './enumerate.js';
import { projectAll } from './pool.js';
import { shareAlikeLoads, type PlanResult } from './project-plan.js';
import { SEARCH_RULES, type SearchRule } from './rules.js';

/** One projected plan: its place in the search's order, the plan, and what projecting it gave. */
export interface SearchedPlan extends PlanResult {
  index: number;
  plan: Plan;
}

export interface SearchResult {
  context: SearchContext;
  /** every plan of the dimensions' product */
  considered: number;
  /** refused by Megatron-Core's rules (divisibility and the others; rules.ts), and by switch-sim's layout */
  refused: number;
  /** over the GPU's memory: pruned by the bound, and over by the full memory model (both before projecting) */
  pruned: number;
  over: number;
  /** projected: the plans that fit (what the bound and the full memory model let through, less the layout's refusals) */
  projected: number;
  /** plans refused or pruned, by rule (the layout's refusals by their line) */
  byRule: Record<string, number>;
  /** the projected plans, fastest first (ties: search order) */
  fitting: SearchedPlan[];
  threads: number;
  seconds: number;
}

/** The plan keys the memory bound reads (it is checked once all of them are chosen). */
const BOUND_KEYS: (keyof Plan)[] = ['pp', 'vpp', 'decoder_first_pipeline_num_layers', 'decoder_last_pipeline_num_layers',
  'account_for_embedding_in_pipeline_split', 'account_for_loss_in_pipeline_split', 'tp', 'etp', 'cp', 'ep', 'micro_batch',
  'shard', 'recompute'];

export const defaultThreads = () => Math.max(1, Math.min(8, availableParallelism()));

/**
 * Every plan Megatron-Core accepts for the workload's model on the cluster at its global batch (the dimensions of
 * dimensions.ts, the rules of rules.ts), pruned by the memory bound (bound.ts), projected on `threads` threads; the
 * order of everything it returns is the search's, whatever the thread count.
 */
export async function searchPlans(cluster: Cluster, w: Workload, narrow: Narrowing,
  opts: { threads?: number; progress?: (done: number, total: number) => void } = {}): Promise<SearchResult> {
  const started = performance.now();
  const ctx = searchContext(w.config, cluster, w.vocabSize, w.source === 'run' && w.config.plan.routing === 'recorded');
  const bound = memoryBound(ctx);
  const memoryRule: SearchRule = {
    keys: BOUND_KEYS, memory: true, doc: 'the memory bound: parameters, gradients, optimizer state and the least activations fit',
    ok: (p) => ctx.memoryGb === undefined || bound(p) <= ctx.memoryGb,
  };
  const plans: Plan[] = [];
  const counts = enumeratePlans(ctx, narrow, (p) => plans.push(p), DIMENSIONS, [...SEARCH_RULES, memoryRule]);
  const threads = opts.threads ?? defaultThreads();
  const results = await projectAll(cluster, shareAlikeLoads(w), plans, threads, (done) => opts.progress?.(done, plans.length));
  const byRule = { ...counts.byRule };
  const fitting: SearchedPlan[] = [];
  let layoutRefused = 0;
  let over = 0;
  const count = (rule: string) => (byRule[rule] = (byRule[rule] ?? 0) + 1);
  results.forEach((r, index) => {
    if ('refused' in r) {
      layoutRefused++;
      count(`switch-sim's layout: ${r.refused.replace(/ \(got .*\)$/, '')}`);
    } else if ('over_gb' in r) {
      over++;
      count('the full memory model: over the GPU\'s memory');
    } else fitting.push({ index, plan: plans[index]!, ...r });
  });
  fitting.sort((a, b) => a.step_ms - b.step_ms || a.index - b.index);
  return {
    context: ctx, considered: counts.considered, refused: counts.refused + layoutRefused, pruned: counts.pruned, over,
    projected: fitting.length, byRule, fitting, threads, seconds: (performance.now() - started) / 1000,
  };
}
