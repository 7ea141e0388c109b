import type { ResultRow } from './results.js';

/** What the summary table's Δ columns are: a line under it (summary.md, `report --markdown`) and in the report. */
export const DIFFERENCE_NOTE = 'Δ Welch: the point\'s mean over its seeds minus the baseline\'s, unpaired, with ' +
  'Welch\'s 95% interval '
  + '(summary.csv: `_diff`). Δ paired: the mean over the seeds both ran of (point − baseline) at the same seed, with ' +
    'its '
  + 'Student-t 95% interval on pairs − 1 degrees of freedom (summary.csv: `_paired_diff`, over `_pairs` seeds); runs ' +
    'that '
  + 'share a seed share their batches and the initial values of the weights they have in common, so the seed\'s own ' +
    'luck '
  + 'cancels in each difference. ✓: that interval excludes zero; "(n pairs)": only n seeds have the measurement in ' +
    'both '
  + 'the point and the baseline.';

/** `n runs (a, b)`: how many runs, and which. */
const which = (runs: string[]) => `${runs.length} run${runs.length > 1 ? 's' : ''} (${runs.join(', ')})`;

/** One line per distinct text that `of` gives some rows: `<head>: n runs (which): <text>`. */
function grouped(rows: ResultRow[], head: string, of: (r: ResultRow) => string | null): string[] {
  const byText = new Map<string, string[]>();
  for (const r of rows) {
    const text = of(r);
    if (text) byText.set(text, [...(byText.get(text) ?? []), r.point]);
  }
  return [...byText].map(([text, runs]) => `${head}: ${which(runs)}: ${text}`);
}

/**
 * The lines that explain a sweep's empty or qualified cells, one per reason: runs not projected onto
 * the `simulate` cluster, projections with a note (this machine outside its calibration), and runs
 * whose training time is unknown (no tokens_per_s or step_ms).
 */
export function runNotes(rows: ResultRow[]): string[] {
  return [
    ...grouped(rows, 'Not projected (simulate)', (r) => r.projection_error),
    ...grouped(rows, 'Projection note (simulate)', (r) => r.projection_note),
    ...grouped(
      rows, 'No tokens_per_s or step_ms',
      (r) => (r.status === 'ok' && r.step_ms === null ? r.run_note ?? 'summary.json has no training time' : null),
    ),
  ];
}
