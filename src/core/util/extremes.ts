/**
 * The largest and smallest of a list by a loop: `Math.max(...xs)` passes every element as an
 * argument and overflows the stack past ~10⁵ of them (G·E counts at 64 devices × 2,048 experts),
 * so no list whose length a user controls is ever spread.
 */
export function maxOf(xs: Iterable<number>, empty = -Infinity): number {
  let m = empty;
  let any = false;
  for (const x of xs) {
    if (!any || x > m || Number.isNaN(x)) m = x;
    any = true;
    if (Number.isNaN(m)) return NaN;
  }
  return m;
}

export function minOf(xs: Iterable<number>, empty = Infinity): number {
  let m = empty;
  let any = false;
  for (const x of xs) {
    if (!any || x < m || Number.isNaN(x)) m = x;
    any = true;
    if (Number.isNaN(m)) return NaN;
  }
  return m;
}

/** Index of the largest element (the first of ties), −1 when empty. */
export function argMax(xs: ArrayLike<number>): number {
  let best = -1;
  for (let i = 0; i < xs.length; i++) if (best < 0 || xs[i]! > xs[best]!) best = i;
  return best;
}
