import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultRow } from '../src/apps/sweep/results.js';
import { difference, estimate } from '../src/apps/sweep/stats.js';
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

const row = (vary: Record<string, unknown>, seed: number, val: number, tokens: number): ResultRow => ({
  point: `${JSON.stringify(vary)}-${seed}`, vary, seed, params_total: 1, params_active_per_token: 1, train_ce: val + 0.1, val_ce: val, tokens_per_s: tokens, step_ms: 1000 / tokens,
  dispatch_overhead_fraction: null, drop_fraction: 0, load_max_over_mean: 1, projected_step_ms: null, projected_tokens_per_s: null, projection_error: null,
  projection_note: null, run_note: null, wall_s: 1, status: 'ok', error: null, config_hash: 'x',
});

test('summary: one row per point over its seeds, each measurement\'s interval and its difference from the baseline; unrecorded columns left out', (t) => {
  const k = 'moe.n_experts';
  const rows = [row({ [k]: 1 }, 1, 4, 100), row({ [k]: 1 }, 2, 5, 100), row({ [k]: 1 }, 3, 6, 100), row({ [k]: 8 }, 1, 1, 90), row({ [k]: 8 }, 2, 2, 90), row({ [k]: 8 }, 3, 3, 90)];
  const points = summarise(rows, [k], { [k]: 1 });
  t.is(points.length, 2);
  t.true(points[0]!.baseline);
  t.deepEqual(points[1]!.seeds, [1, 2, 3]);
  t.true(close(points[1]!.differences.val_ce!.mean, -3));
  t.true(points[1]!.differences.val_ce!.clear);
  t.is(points[0]!.differences.val_ce, undefined, 'the baseline is not compared with itself');
  const dir = tempDir(t);
  writeSummary(dir, [k], points);
  const csv = readFileSync(join(dir, 'summary.csv'), 'utf8').trim().split('\n');
  t.is(csv.length, 3, 'a header and a row per point');
  const header = csv[0]!.split(',');
  t.deepEqual(header.slice(0, 5), ['point', k, 'seeds', 'ok', 'baseline']);
  t.true(header.includes('val_ce_diff_clear') && header.includes('tokens_per_s_hi'));
  t.false(header.some((h) => h.startsWith('projected_') || h.startsWith('dispatch_overhead')), 'columns no run recorded are left out');
  const eight = Object.fromEntries(header.map((h, i) => [h, csv[2]!.split(',')[i]]));
  t.is(eight.val_ce_mean, '2');
  t.is(eight.val_ce_diff, '-3');
  t.is(eight.val_ce_diff_clear, 'true');
});

test('the difference-from-baseline table: mean ± half-width, Δ with its interval, ✓ only where it excludes zero; one seed shows no interval', (t) => {
  const k = 'moe.n_experts';
  // baseline 4, 5, 6 (mean 5, half-width t(0.975, 2)·1/√3 = 2.4841); E=8: 1, 2, 3 (Δ −3 [−5.2670, −0.7330], Welch dof 4); E=16: 4, 4.5, 5 (Δ −0.5 [−2.5777, 1.5777], Welch dof 2.94: spans 0; scipy's t)
  const rows = [row({ [k]: 1 }, 1, 4, 100), row({ [k]: 1 }, 2, 5, 100), row({ [k]: 1 }, 3, 6, 100), row({ [k]: 8 }, 1, 1, 90), row({ [k]: 8 }, 2, 2, 90), row({ [k]: 8 }, 3, 3, 90),
    row({ [k]: 16 }, 1, 4, 80), row({ [k]: 16 }, 2, 4.5, 80), row({ [k]: 16 }, 3, 5, 80), row({ [k]: 32 }, 1, 2, 70)];
  const table = markdownTable(summaryTable(summarise(rows, [k], { [k]: 1 }), 'n_experts=1', ['val_ce']));
  t.is(table, [
    '| point | seeds ok | val_ce | Δ val_ce |',
    '| --- | --- | --- | --- |',
    '| n_experts=1 (baseline) | 3/3 | 5.0000 ± 2.4841 |  |',
    '| n_experts=8 | 3/3 | 2.0000 ± 2.4841 | -3.0000 [-5.2670, -0.7330] ✓ |',
    '| n_experts=16 | 3/3 | 4.5000 ± 1.2421 | -0.5000 [-2.5777, 1.5777] |',
    '| n_experts=32 | 1/1 | 2.0000 | -3.0000 |',
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
