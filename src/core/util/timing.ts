/**
 * Mean milliseconds of one call of `f` (sync or async) over enough calls to fill `budgetMs` (at least
 * `minReps`), after `warmup` unmeasured calls: the micro-benchmarks' (probe, dispatch) one timer.
 */
export async function meanMs(f: () => unknown, budgetMs = 200, minReps = 3, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await f();
  let n = 0;
  const t0 = performance.now();
  while (n < minReps || performance.now() - t0 < budgetMs) {
    await f();
    n++;
  }
  return (performance.now() - t0) / n;
}
