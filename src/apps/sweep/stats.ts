import tQuantile from '@stdlib/stats-base-dists-t-quantile';

/** A mean over seeds with its standard error and 95% interval (Student's t with n − 1 degrees of freedom). */
export interface Estimate {
  n: number;
  mean: number;
  /** sample standard deviation (n − 1 in the denominator); 0 for one value */
  sd: number;
  /** standard error of the mean, sd / √n */
  se: number;
  /** the 95% interval: mean ± t(0.975, n − 1) · se (the mean alone, both ends, with one value) */
  lo: number;
  hi: number;
}

/** A difference of two means (point − baseline), Welch's interval, and whether it clearly excludes zero. */
export interface Difference extends Omit<Estimate, 'n' | 'sd'> {
  /** Welch–Satterthwaite degrees of freedom */
  dof: number;
  /** the 95% interval excludes 0 */
  clear: boolean;
}

const LEVEL = 0.975;

export function estimate(values: number[]): Estimate {
  const n = values.length;
  if (n === 0) return { n: 0, mean: NaN, sd: NaN, se: NaN, lo: NaN, hi: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { n, mean, sd: 0, se: 0, lo: mean, hi: mean };
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const se = sd / Math.sqrt(n);
  const t = tQuantile(LEVEL, n - 1);
  return { n, mean, sd, se, lo: mean - t * se, hi: mean + t * se };
}

/**
 * point − baseline, with Welch's unequal-variance interval:
 *   se = √(s_a²/n_a + s_b²/n_b),  dof = se⁴ / ((s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1))
 * Without spread (one seed each, or equal values) the interval is the difference itself and is
 * never called clear: nothing says how large chance is.
 */
export function difference(point: number[], baseline: number[]): Difference {
  const a = estimate(point);
  const b = estimate(baseline);
  const mean = a.mean - b.mean;
  const va = a.n > 1 ? a.sd ** 2 / a.n : 0;
  const vb = b.n > 1 ? b.sd ** 2 / b.n : 0;
  const se = Math.sqrt(va + vb);
  if (!(se > 0) || a.n < 2 || b.n < 2) return { mean, se: 0, lo: mean, hi: mean, dof: NaN, clear: false };
  const dof = (va + vb) ** 2 / ((va ** 2) / (a.n - 1) + (vb ** 2) / (b.n - 1));
  const t = tQuantile(LEVEL, dof);
  const lo = mean - t * se;
  const hi = mean + t * se;
  return { mean, se, lo, hi, dof, clear: lo > 0 || hi < 0 };
}

/** point − baseline paired by seed: the mean of the per-seed differences, its standard error and 95% interval. */
export interface PairedDifference extends Omit<Estimate, 'sd'> {
  /** the seeds both have, in order: n = seeds.length pairs */
  seeds: number[];
  /** pairs − 1 (NaN with one pair) */
  dof: number;
  /** the 95% interval excludes 0 */
  clear: boolean;
}

/**
 * point − baseline over the seeds both have (each a map seed → value): d_s = point_s − baseline_s,
 *   mean = Σ d_s / n,  se = sd(d) / √n,  interval mean ± t(0.975, n − 1) · se.
 * Points that share a seed share its batches and initial weights, so the seed's own luck cancels in
 * d_s. With one pair, or the same difference at every seed, the interval is the mean alone, never clear.
 */
export function pairedDifference(point: Map<number, number>, baseline: Map<number, number>): PairedDifference {
  const seeds = [...point.keys()].filter((s) => baseline.has(s)).sort((a, b) => a - b);
  const e = estimate(seeds.map((s) => point.get(s)! - baseline.get(s)!));
  const dof = e.n > 1 ? e.n - 1 : NaN;
  return { n: e.n, mean: e.mean, se: e.se, lo: e.lo, hi: e.hi, seeds, dof, clear: e.se > 0 && (e.lo > 0 || e.hi < 0) };
}
