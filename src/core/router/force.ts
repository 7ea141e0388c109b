import type { ForceRouting } from '../config/force-routing.js';
import type { Rng } from '../util/rng.js';

/** Cumulative Zipf weights over E experts: P(e) ∝ (e + 1)^−s. */
function zipfCdf(E: number, s: number): Float64Array {
  const cdf = new Float64Array(E);
  let total = 0;
  for (let e = 0; e < E; e++) cdf[e] = total += (e + 1) ** -s;
  for (let e = 0; e < E; e++) cdf[e]! /= total;
  return cdf;
}

/**
 * Overwrites `expert` ([N·K], token-major, the router's own top-k on entry) with the forced choices.
 * `S` tokens per group; `rngForGroup` draws Zipf choices (one stream per layer, step and group, so
 * runs repeat, whatever the micro-batching).
 */
export function forceChoices(force: ForceRouting, expert: Int32Array, probs: Float32Array, E: number, K: number,
  S: number, rngForGroup?: (g: number) => Rng): void {
  if (force.kind === 'learned') return;
  const N = expert.length / K;
  const cdf = force.kind === 'zipf' ? zipfCdf(E, force.s) : undefined;
  let rng: Rng | undefined;
  for (let t = 0; t < N; t++) {
    if (cdf && t % S === 0) rng = rngForGroup?.(t / S);
    for (let c = 0; c < K; c++) {
      let e: number;
      if (force.kind === 'uniform') e = ((t % S) + c) % E;
      else if (force.kind === 'one-hot' && c === 0) e = force.expert;
      else if (force.kind === 'one-hot') e = bestOther(probs, t * E, E, expert, t * K, c);
      else {
        if (!rng) throw new Error('force_routing zipf needs a random stream');
        do {
          const u = rng.uniform();
          e = 0;
          while (e < E - 1 && u >= cdf![e]!) e++;
        } while (taken(expert, t * K, c, e));
      }
      expert[t * K + c] = e;
    }
  }
}

const taken = (expert: Int32Array, at: number, c: number, e: number) => {
  for (let q = 0; q < c; q++) if (expert[at + q] === e) return true;
  return false;
};

/** The router's likeliest expert among those the token has not chosen yet. */
function bestOther(probs: Float32Array, row: number, E: number, expert: Int32Array, at: number, c: number): number {
  let best = -1;
  for (let e = 0; e < E; e++)
    if (!taken(expert, at, c, e) && (best < 0 || probs[row + e]! > probs[row + best]!)) best = e;
  return best;
}
