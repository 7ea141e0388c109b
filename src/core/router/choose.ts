/**
 * Which k experts each token goes to, from its router scores [N, E] (softmax probabilities or
 * sigmoid affinities). Two refinements of plain top-k, both Megatron-Core router options:
 *
 *   bias (moe.balance aux_free; `moe_router_enable_expert_bias`): the experts are chosen by
 *     s_{t,e} + b_e, a per-expert bias that balancing moves between steps; the gates stay s_{t,e}
 *     (DeepSeek-V3 §2.1.2: the bias is for routing only).
 *   groups (moe.route_groups / route_group_topk; `moe_router_num_groups` / `moe_router_group_topk`):
 *     the experts are split into G contiguous groups (a device's experts, or a node's); a group's
 *     score is the sum of its best ⌊k / group_topk⌋ (biased) scores, each token keeps its best
 *     group_topk groups and picks its k experts inside those only (DeepSeek-V2 device-limited
 *     routing, DeepSeek-V3 node-limited routing).
 *
 * Ties go to the lower expert (and group) index, so every layout and thread chooses alike.
 */
export interface ChoiceOptions {
  topK: number;
  /** b_e, added to the scores for choosing only */
  bias?: Float32Array;
  /** device-limited routing: `count` groups of E / count experts, `topK` of them kept per token */
  groups?: { count: number; topK: number };
}

/** Index of the largest of values[0..n) not yet `used` (ties: the lowest index). */
function best(values: Float64Array, n: number, used: Uint8Array): number {
  let at = -1;
  for (let i = 0; i < n; i++) if (!used[i] && (at < 0 || values[i]! > values[at]!)) at = i;
  return at;
}

/** The experts of every token, best first: [N·k], token t's choice c at t·k + c. */
export function chooseExperts(scores: Float32Array, E: number, opts: ChoiceOptions): Int32Array {
  const N = scores.length / E;
  const K = opts.topK;
  const grouped = opts.groups && opts.groups.topK < opts.groups.count;
  if (K === 1 && !opts.bias && !grouped) return argmaxRows(scores, N, E);
  const out = new Int32Array(N * K);
  const s = new Float64Array(E); // one token's routing scores (biased)
  const used = new Uint8Array(E);
  const groups = opts.groups && opts.groups.topK < opts.groups.count ? opts.groups : undefined;
  const G = groups?.count ?? 1;
  const per = E / G;
  const gScore = new Float64Array(G);
  const gUsed = new Uint8Array(G);
  const inGroup = new Float64Array(per);
  const inUsed = new Uint8Array(per);
  const perGroup = groups ? Math.max(1, Math.floor(K / groups.topK)) : 0;
  for (let t = 0; t < N; t++) {
    for (let e = 0; e < E; e++) s[e] = scores[t * E + e]! + (opts.bias?.[e] ?? 0);
    used.fill(0);
    if (groups) {
      // a group's score: the sum of its best ⌊k / group_topk⌋ scores
      for (let g = 0; g < G; g++) {
        inGroup.set(s.subarray(g * per, (g + 1) * per));
        inUsed.fill(0);
        let sum = 0;
        for (let j = 0; j < perGroup; j++) {
          const i = best(inGroup, per, inUsed);
          inUsed[i] = 1;
          sum += inGroup[i]!;
        }
        gScore[g] = sum;
      }
      // keep the best group_topk groups: the others' experts cannot be chosen
      gUsed.fill(0);
      for (let j = 0; j < groups.topK; j++) gUsed[best(gScore, G, gUsed)] = 1;
      for (let g = 0; g < G; g++) if (!gUsed[g]) used.fill(1, g * per, (g + 1) * per);
    }
    for (let c = 0; c < K; c++) {
      const e = best(s, E, used);
      used[e] = 1;
      out[t * K + c] = e;
    }
  }
  return out;
}

/**
 * Top-1 without bias or groups: each row's largest score, ties to the lowest index (as `best` over the
 * scores plus 0: the same comparisons, so NaN rows pick alike).
 */
function argmaxRows(scores: Float32Array, N: number, E: number): Int32Array {
  const out = new Int32Array(N);
  for (let t = 0; t < N; t++) {
    const row = t * E;
    let at = 0;
    let top = scores[row]!;
    for (let e = 1; e < E; e++) {
      const v = scores[row + e]!;
      if (v > top) (at = e), (top = v);
    }
    out[t] = at;
  }
  return out;
}

/** How many groups (devices) token t's k experts span, for each token: [N]. */
export function groupsSpanned(expert: Int32Array, K: number, E: number, G: number): Int32Array {
  const N = expert.length / K;
  const per = E / G;
  const out = new Int32Array(N);
  const seen = new Uint8Array(G);
  for (let t = 0; t < N; t++) {
    seen.fill(0);
    let n = 0;
    for (let c = 0; c < K; c++) {
      const g = Math.floor(expert[t * K + c]! / per);
      if (!seen[g]) (seen[g] = 1), n++;
    }
    out[t] = n;
  }
  return out;
}
