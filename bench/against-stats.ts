/**
 * The statistics of bench/against.ts, pure (no training, no processes): the median and spread of a
 * figure over rounds, per-round ratios of two trees' figures, the order the trees take within a round,
 * and the text of one cell ("12345 (12000–12500)", "1.02x (0.97–1.05)").
 *
 * The figure of each mode from its runs (measureMode): pair and half combine half-batch runs.
 *
 * Ratios are paired by round (working[r] / rev[r]): both were measured back to back, so a slow spell
 * of the machine divides out, which the ratio of the two medians would not do.
 */
import { PAIR_COPIES, type Mode } from './against-args.js';
import type { Measurement } from './against-tree.js';

/** A figure over rounds: median, the quartiles (linear interpolation between order statistics) and the range. */
export interface Spread {
  n: number;
  median: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
}

/** Quantile p (0..1) of numbers sorted ascending, interpolating linearly (R's and numpy's default). */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * p;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function median(xs: readonly number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.5);
}

export function spread(xs: readonly number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    q1: quantile(s, 0.25),
    q3: quantile(s, 0.75),
    min: s.length > 0 ? s[0]! : NaN,
    max: s.length > 0 ? s[s.length - 1]! : NaN,
  };
}

/** Round-by-round ratios num[r] / den[r] (the shorter list decides how many). */
export function pairedRatios(num: readonly number[], den: readonly number[]): number[] {
  const n = Math.min(num.length, den.length);
  return Array.from({ length: n }, (_, r) => num[r]! / den[r]!);
}

/** Two trees' tokens/s over rounds, and working/REV per round. */
export interface Comparison {
  working: Spread;
  rev: Spread;
  ratio: Spread;
  ratios: number[];
}

export function compare(working: readonly number[], rev: readonly number[]): Comparison {
  const ratios = pairedRatios(working, rev);
  return { working: spread(working), rev: spread(rev), ratio: spread(ratios), ratios };
}

/**
 * tokens/s of runs that trained side by side, step for step in lockstep at best: all their tokens per
 * step over the slowest one's ms per step (spmd's devices wait for the slowest at every step).
 */
export function lockstepTokensPerS(runs: readonly { tokens_per_step: number; ms_per_step: number }[]): number {
  const tokens = runs.reduce((a, r) => a + r.tokens_per_step, 0);
  const ms = Math.max(...runs.map((r) => r.ms_per_step));
  return tokens / (ms / 1000);
}

/** One run of the mode's config in a process of its own, at the batch ÷ batchDivisor (default 1). */
export type RunOnce = (batchDivisor?: number) => Promise<Measurement>;

/**
 * A mode's figure: one run, except `pair` (PAIR_COPIES runs at the batch ÷ PAIR_COPIES at once, in lockstep)
 * and `half` (one such run alone, counted as PAIR_COPIES of it in lockstep).
 */
export async function measureMode(mode: Mode, one: RunOnce): Promise<Measurement> {
  if (mode !== 'pair' && mode !== 'half') return one();
  const runs = mode === 'pair'
    ? await Promise.all(Array.from({ length: PAIR_COPIES }, () => one(PAIR_COPIES)))
    : Array<Measurement>(PAIR_COPIES).fill(await one(PAIR_COPIES));
  const tokensPerS = lockstepTokensPerS(runs);
  const tokensPerStep = runs.reduce((a, r) => a + r.tokens_per_step, 0);
  return { tokens_per_s: tokensPerS, ms_per_step: tokensPerStep / tokensPerS * 1000,
    counted_steps: runs[0]!.counted_steps, tokens_per_step: tokensPerStep };
}

export type TreeName = 'working' | 'rev';

/** Which tree goes first in round r (0-based): working first in even rounds, REV first in odd ones. */
export function roundOrder(round: number): TreeName[] {
  return round % 2 === 0 ? ['working', 'rev'] : ['rev', 'working'];
}

/** "12345 (12000–12500)" for tokens/s; with `ratio`, "1.02x (0.97–1.05)". One round: the value alone. */
export function formatSpread(s: Spread, opts: { ratio?: boolean } = {}): string {
  const f = (x: number) => (Number.isNaN(x) ? '-' : opts.ratio ? x.toFixed(2) : x.toFixed(0));
  const unit = opts.ratio ? 'x' : '';
  if (s.n <= 1) return `${f(s.median)}${unit}`;
  return `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)})`;
}
