import type { Plan, SearchContext } from './context.js';
import { DIMENSIONS, type Dimension, type Narrowing } from './dimensions.js';
import { SEARCH_RULES, type SearchRule } from './rules.js';

/**
 * How many plans the dimensions make, how many of them the rules refused (Megatron-Core's divisibility and other
 * refusals) and how many a memory rule pruned, by rule (the first broken).
 */
export interface EnumerationCounts {
  considered: number;
  refused: number;
  pruned: number;
  byRule: Record<string, number>;
}

/** Each dimension's values, in order. */
export const dimensionValues = (ctx: SearchContext, narrow: Narrowing, dims: Dimension[] = DIMENSIONS) =>
  dims.map((d) => ({ dim: d, values: d.values(ctx, narrow) }));

/**
 * Every plan of the dimensions' product, depth first in table order (the order is the same on every run and
 * every thread count), each rule checked as soon as its last key is chosen: a refused partial plan counts every
 * plan below it (the product of the later dimensions' sizes) without building them. `visit` gets each accepted
 * plan (a fresh object: the config's plan with the dimensions' values).
 */
export function enumeratePlans(ctx: SearchContext, narrow: Narrowing, visit: (p: Plan) => void,
  dims: Dimension[] = DIMENSIONS, rules: SearchRule[] = SEARCH_RULES): EnumerationCounts {
  const levels = dimensionValues(ctx, narrow, dims);
  const depthOf = (k: keyof Plan) => levels.findIndex((l) => l.dim.keys.includes(k));
  const atDepth: SearchRule[][] = levels.map(() => []);
  for (const r of rules) atDepth[Math.max(0, ...r.keys.map(depthOf))]!.push(r);
  // below[d]: plans under one choice at depth d (the product of the later dimensions' sizes)
  const below = levels.map((_, d) => levels.slice(d + 1).reduce((a, l) => a * l.values.length, 1));
  const counts: EnumerationCounts = { considered: levels.reduce((a, l) => a * l.values.length, 1), refused: 0, pruned: 0, byRule: {} };
  const plan: Plan = { ...ctx.config.plan };
  const walk = (d: number) => {
    if (d === levels.length) {
      visit({ ...plan });
      return;
    }
    for (const patch of levels[d]!.values) {
      Object.assign(plan, patch);
      const broken = atDepth[d]!.find((r) => !r.ok(plan, ctx));
      if (broken) {
        if (broken.memory) counts.pruned += below[d]!;
        else counts.refused += below[d]!;
        counts.byRule[broken.doc] = (counts.byRule[broken.doc] ?? 0) + below[d]!;
      } else walk(d + 1);
    }
  };
  if (counts.considered > 0) walk(0);
  return counts;
}
