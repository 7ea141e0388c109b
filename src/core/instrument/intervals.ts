/** Half-open time intervals [start, end) in ms, and the few set operations the profiler needs. */
export type Interval = [number, number];

/** Sorted, disjoint cover of the given intervals. */
export function union(xs: Interval[]): Interval[] {
  const sorted = xs.filter(([a, b]) => b > a).sort((p, q) => p[0] - q[0]);
  const out: Interval[] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export const length = (xs: Interval[]) => xs.reduce((s, [a, b]) => s + (b - a), 0);

/** Total length of the overlap of two unions (both sorted and disjoint). */
export function overlap(xs: Interval[], ys: Interval[]): number {
  let i = 0;
  let j = 0;
  let total = 0;
  while (i < xs.length && j < ys.length) {
    const [a0, a1] = xs[i]!;
    const [b0, b1] = ys[j]!;
    total += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
    if (a1 < b1) i++;
    else j++;
  }
  return total;
}

/** `outer` minus the intervals in `holes` (sorted, disjoint input; sorted, disjoint output). */
export function subtract(outer: Interval, holes: Interval[]): Interval[] {
  const out: Interval[] = [];
  let at = outer[0];
  for (const [a, b] of union(holes)) {
    if (b <= at || a >= outer[1]) continue;
    if (a > at) out.push([at, a]);
    at = Math.max(at, b);
  }
  if (at < outer[1]) out.push([at, outer[1]]);
  return out;
}

/** Percentile (nearest rank) of a list of numbers. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
