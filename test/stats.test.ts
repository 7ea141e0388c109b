import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultRow } from '../src/apps/sweep/results.js';
import { difference, estimate, pairedDifference } from '../src/apps/sweep/stats.js';
import { summarise, writeSummary } from '../src/apps/sweep/summary.js';
import { markdownTable, summaryTable } from '../src/apps/sweep/report.js';
import { tempDir } from './helpers.js';

const close = (a: number, b: number, tol = 1e-5) => Math.abs(a - b) <= tol;

test('a mean over seeds: standard error and 95% interval with Student\'s t, worked by hand', (t) => {
  // 1, 2, 3, 4: mean 2.5, sd √(5/3) = 1.290994, se 0.645497, t(0.975, 3) = 3.182446 (tables)
  const e = estimate([1, 2, 3, 4]);
  t.is(e.n, 4);
  t.true(close(e.mean, 2.5));
  t.true(close(e.sd, 1.290994));
  t.true(close(e.se, 0.645497));
  t.true(close(e.lo, 2.5 - 3.182446 * 0.645497));
  t.true(close(e.hi, 2.5 + 3.182446 * 0.645497));
  // three seeds: t(0.975, 2) = 4.302653
  const three = estimate([2.10, 2.12, 2.14]);
  t.true(close(three.hi - three.mean, 4.302653 * (0.02 / Math.sqrt(3))));
  // one value: the mean alone
  t.deepEqual(estimate([7]), { n: 1, mean: 7, sd: 0, se: 0, lo: 7, hi: 7 });
});

test('a difference from the baseline: Welch\'s interval, and clear only when it excludes zero', (t) => {
  // [1, 2, 3] − [4, 5, 6]: −3; each s² = 1, se = √(1/3 + 1/3) = 0.816497; Welch dof = (2/3)² / (2 · (1/3)² / 2) = 4, t(0.975, 4) = 2.776445
  const d = difference([1, 2, 3], [4, 5, 6]);
  t.true(close(d.mean, -3));
  t.true(close(d.se, 0.816497));
  t.true(close(d.dof, 4));
  t.true(close(d.lo, -3 - 2.776445 * 0.816497) && close(d.hi, -3 + 2.776445 * 0.816497));
  t.true(d.clear);
  // overlapping seeds: not clear
  t.false(difference([2.1, 2.2, 2.3], [2.15, 2.25, 2.35]).clear);
  // one seed each says nothing about chance: never clear
  t.false(difference([1], [5]).clear);
});

test('a difference paired by seed: the mean of the per-seed differences, its standard error and t(pairs − 1) interval, worked by hand', (t) => {
  // seeds 1, 2, 3: point 3.5, 4.4, 5.6 against baseline 4, 5, 6: differences −0.5, −0.6, −0.4
  // mean −0.5; sd √((0 + 0.01 + 0.01) / 2) = 0.1; se 0.1/√3 = 0.0577350; t(0.975, 2) = 4.302653:
  // [−0.5 − 0.248414, −0.5 + 0.248414] = [−0.748414, −0.251586] (scipy's ttest_rel: t = −8.660, p = 0.013)
  const base = new Map([[1, 4], [2, 5], [3, 6]]);
  const d = pairedDifference(new Map([[3, 5.6], [1, 3.5], [2, 4.4]]), base);
  t.deepEqual(d.seeds, [1, 2, 3], 'paired by seed, whatever the order the runs came in');
  t.is(d.n, 3);
  t.is(d.dof, 2);
  t.true(close(d.mean, -0.5) && close(d.se, 0.0577350));
  t.true(close(d.lo, -0.748414) && close(d.hi, -0.251586), `${d.lo} ${d.hi}`);
  t.true(d.clear);
  // the same values unpaired: Welch's interval spans zero ([−2.8310, 1.8310], dof 3.989)
  t.false(difference([3.5, 4.4, 5.6], [4, 5, 6]).clear);
  // a seed the baseline lacks (7) and one the point lacks (3): two pairs, −0.5 and −0.6: mean −0.55, sd 0.0707107,
  // se 0.05, t(0.975, 1) = 12.706205: [−1.185310, 0.085310], spans zero
  const two = pairedDifference(new Map([[1, 3.5], [2, 4.4], [7, 9]]), base);
  t.deepEqual(two.seeds, [1, 2]);
  t.true(close(two.mean, -0.55) && close(two.se, 0.05) && close(two.lo, -1.185310) && close(two.hi, 0.085310));
  t.false(two.clear);
  // one pair, or the same difference at every seed: the mean alone, never clear; no seed in common: nothing
  t.like(pairedDifference(new Map([[1, 3]]), base), { n: 1, mean: -1, se: 0, lo: -1, hi: -1, clear: false });
  t.like(pairedDifference(new Map([[1, 3], [2, 4], [3, 5]]), base), { n: 3, mean: -1, se: 0, lo: -1, hi: -1, clear: false });
  t.is(pairedDifference(new Map([[9, 3]]), base).n, 0);
});

const row = (vary: Record<string, unknown>, seed: number, val: number, tokens: number): ResultRow => ({
  point: `${JSON.stringify(vary)}-${seed}`, vary, seed, params_total: 1, params_active_per_token: 1, train_ce: val + 0.1, val_ce: val, tokens_per_s: tokens, step_ms: 1000 / tokens,
  dispatch_overhead_fraction: null, drop_fraction: 0, load_max_over_mean: 1, projected_step_ms: null, projected_tokens_per_s: null, projection_error: null,
  projection_note: null, run_note: null, wall_s: 1, status: 'ok', error: null, config_hash: 'x',
});

test('summary: one row per point over its seeds, each measurement\'s interval, its difference from the baseline unpaired and paired by seed', (t) => {
  const k = 'moe.n_experts';
  const failed = (r: ResultRow): ResultRow => ({ ...r, status: 'failed', train_ce: null, val_ce: null, tokens_per_s: null, step_ms: null });
  const rows = [row({ [k]: 1 }, 1, 4, 100), row({ [k]: 1 }, 2, 5, 100), row({ [k]: 1 }, 3, 6, 100),
    row({ [k]: 8 }, 1, 1, 90), row({ [k]: 8 }, 2, 2, 90), row({ [k]: 8 }, 3, 3, 90),
    row({ [k]: 64 }, 1, 3.5, 90), row({ [k]: 64 }, 2, 4.4, 90), failed(row({ [k]: 64 }, 3, 5.6, 90))];
  const points = summarise(rows, [k], { [k]: 1 });
  t.is(points.length, 3);
  t.true(points[0]!.baseline);
  t.deepEqual(points[1]!.seeds, [1, 2, 3]);
  t.true(close(points[1]!.differences.val_ce!.mean, -3));
  t.true(points[1]!.differences.val_ce!.clear);
  t.is(points[0]!.differences.val_ce, undefined, 'the baseline is not compared with itself');
  t.is(points[0]!.paired.val_ce, undefined);
  t.deepEqual(points[2]!.paired.val_ce!.seeds, [1, 2], 'paired over the seeds both ran: seed 3 failed');
  const dir = tempDir(t);
  writeSummary(dir, [k], points);
  const csv = readFileSync(join(dir, 'summary.csv'), 'utf8').trim().split('\n');
  t.is(csv.length, 4, 'a header and a row per point');
  const header = csv[0]!.split(',');
  t.deepEqual(header.slice(0, 5), ['point', k, 'seeds', 'ok', 'baseline']);
  t.deepEqual(header.slice(5, 20), ['train_ce_mean', 'train_ce_se', 'train_ce_lo', 'train_ce_hi', 'train_ce_diff', 'train_ce_diff_se', 'train_ce_diff_lo',
    'train_ce_diff_hi', 'train_ce_diff_clear', 'train_ce_paired_diff', 'train_ce_paired_diff_se', 'train_ce_paired_diff_lo', 'train_ce_paired_diff_hi',
    'train_ce_paired_diff_clear', 'train_ce_pairs']);
  t.false(header.some((h) => h.startsWith('projected_') || h.startsWith('dispatch_overhead')), 'columns no run recorded are left out');
  const cells = (i: number) => Object.fromEntries(header.map((h, j) => [h, csv[i]!.split(',')[j]]));
  const eight = cells(2);
  t.like(eight, { val_ce_mean: '2', val_ce_diff: '-3', val_ce_diff_clear: 'true' });
  // the same difference at every seed: no spread, so the paired interval is the difference alone, not clear
  t.like(eight, { val_ce_paired_diff: '-3', val_ce_paired_diff_se: '0', val_ce_paired_diff_lo: '-3', val_ce_paired_diff_hi: '-3' });
  t.like(eight, { val_ce_paired_diff_clear: 'false', val_ce_pairs: '3' });
  // seeds 1, 2: −0.5, −0.6: mean −0.55, se 0.05, t(0.975, 1) = 12.706205: [−1.185310, 0.085310]
  const sixtyFour = cells(3);
  t.like(sixtyFour, { seeds: '3', ok: '2', val_ce_pairs: '2', val_ce_paired_diff_clear: 'false' });
  t.true(close(+sixtyFour.val_ce_paired_diff!, -0.55) && close(+sixtyFour.val_ce_paired_diff_se!, 0.05));
  t.true(close(+sixtyFour.val_ce_paired_diff_lo!, -1.185310) && close(+sixtyFour.val_ce_paired_diff_hi!, 0.085310));
  t.is(cells(1).val_ce_paired_diff, '', 'the baseline has no difference from itself');
});

test('the table: mean ± half-width, Δ Welch and Δ paired with intervals, ✓ where one excludes zero; one seed: no interval', (t) => {
  const k = 'moe.n_experts';
  // baseline 4, 5, 6 (mean 5, half-width t(0.975, 2)·1/√3 = 2.4841)
  // E=8: 1, 2, 3: Welch Δ −3 [−5.2670, −0.7330] (dof 4); paired −3 at every seed: no spread, the mean alone
  // E=16: 4, 4.5, 5: Welch Δ −0.5 [−2.5777, 1.5777] (dof 2.94, spans 0; scipy's t); paired 0, −0.5, −1: se 0.288675, [−1.7421, 0.7421]
  // E=32: seed 1 only: 2: Welch −3 (one seed: no interval); paired 2 − 4 = −2, one pair of three seeds
  // E=64: 3.5, 4.4, 5.6 (half-width 2.6172): Welch −0.5 [−2.8310, 1.8310] (dof 3.99, spans 0); paired −0.5, −0.6, −0.4: [−0.7484, −0.2516] ✓
  const rows = [row({ [k]: 1 }, 1, 4, 100), row({ [k]: 1 }, 2, 5, 100), row({ [k]: 1 }, 3, 6, 100),
    row({ [k]: 8 }, 1, 1, 90), row({ [k]: 8 }, 2, 2, 90), row({ [k]: 8 }, 3, 3, 90),
    row({ [k]: 16 }, 1, 4, 80), row({ [k]: 16 }, 2, 4.5, 80), row({ [k]: 16 }, 3, 5, 80), row({ [k]: 32 }, 1, 2, 70),
    row({ [k]: 64 }, 1, 3.5, 80), row({ [k]: 64 }, 2, 4.4, 80), row({ [k]: 64 }, 3, 5.6, 80)];
  const table = markdownTable(summaryTable(summarise(rows, [k], { [k]: 1 }), 'n_experts=1', ['val_ce']));
  t.is(table, [
    '| point | seeds ok | val_ce | Δ val_ce Welch | Δ val_ce paired |',
    '| --- | --- | --- | --- | --- |',
    '| n_experts=1 (baseline) | 3/3 | 5.0000 ± 2.4841 |  |  |',
    '| n_experts=8 | 3/3 | 2.0000 ± 2.4841 | -3.0000 [-5.2670, -0.7330] ✓ | -3.0000 |',
    '| n_experts=16 | 3/3 | 4.5000 ± 1.2421 | -0.5000 [-2.5777, 1.5777] | -0.5000 [-1.7421, 0.7421] |',
    '| n_experts=32 | 1/1 | 2.0000 | -3.0000 | -2.0000 (1 pair) |',
    '| n_experts=64 | 3/3 | 4.5000 ± 2.6172 | -0.5000 [-2.8310, 1.8310] | -0.5000 [-0.7484, -0.2516] ✓ |',
    '',
  ].join('\n'));
  // times and rates: 4 significant digits of the column's smallest mean (a 0.5 ms step is not "0.5 ± 0.0")
  const fast = summarise([row({ [k]: 1 }, 1, 4, 2000), row({ [k]: 1 }, 2, 5, 2500), row({ [k]: 8 }, 1, 4, 40000)], [k], { [k]: 1 });
  t.is(markdownTable(summaryTable(fast, undefined, ['step_ms', 'tokens_per_s'])), [
    '| point | seeds ok | tokens_per_s | step_ms |',
    '| --- | --- | --- | --- |',
    '| n_experts=1 (baseline) | 2/2 | 2250 ± 3177 | 0.4500 ± 0.6353 |',
    '| n_experts=8 | 1/1 | 40000 | 0.0250 |',
    '',
  ].join('\n'));
});
