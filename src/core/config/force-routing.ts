// `moe.force_routing` parsed: a config value, so it lives with the config; the router applies it (router/force.ts).

/**
 * `moe.force_routing`: who chooses each token's experts. The gate probabilities stay the router's
 * (g = p_{t,e} of the forced e, so the router still learns through them); only the choice is forced,
 * and capacity and the drop policy apply as usual.
 *   learned     the router's top-k (default)
 *   uniform     token i of its group → expert (i + c) mod E for choice c: perfectly balanced
 *   zipf:S      expert e drawn with probability ∝ (e + 1)^−S (expert 0 the most popular), seeded
 *   one-hot:K   every token's first choice is expert K (a second choice is the router's best other)
 */
export type ForceRouting =
  | { kind: 'learned' }
  | { kind: 'uniform' }
  | { kind: 'zipf'; s: number }
  | { kind: 'one-hot'; expert: number };

/** Parses the config string; returns an error message instead of throwing, for the config's validator. */
export function parseForceRouting(text: string, experts: number): ForceRouting | string {
  if (text === 'learned' || text === 'uniform') return { kind: text };
  const zipf = /^zipf:(\d+(?:\.\d+)?)$/.exec(text);
  if (zipf) return { kind: 'zipf', s: Number(zipf[1]) };
  const hot = /^one-hot:(\d+)$/.exec(text);
  if (hot) {
    const k = Number(hot[1]);
    if (k >= experts) return `must name an expert below moe.n_experts (${experts}) in one-hot:K`;
    return { kind: 'one-hot', expert: k };
  }
  return 'must be learned, uniform, zipf:S (S a number >= 0) or one-hot:K (K an expert index)';
}
