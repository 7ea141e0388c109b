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
