import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSweep } from '../src/apps/sweep/run.js';
import { main } from '../src/cli/main.js';
import { assertPageRenders } from './browser.js';
import { CORPUS, tempDir } from './helpers.js';

/**
 * Every shipped sweep file, run whole at a tiny size: its own grid, runs, baseline, record and
 * simulate keys, 2 steps and 2 seeds on the committed corpus, each run in this process. What it
 * checks is that the file a user runs works from end to end, not what it measures.
 */
const SWEEPS = new URL('../configs/sweeps/', import.meta.url).pathname;
const TINY = [
  `data.dataset=${CORPUS}`, 'data.path=', 'data.seq_len=16', 'data.batch_size=8',
  'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32',
  'train.steps=2', 'train.warmup_steps=1', 'train.eval_every=0', 'train.eval_batches=1', 'train.log_every=1',
];

for (const file of readdirSync(SWEEPS).filter((f) => f.endsWith('.yaml')).sort()) {
  test(`configs/sweeps/${file}: 2 steps, 2 seeds: every run ok, one summary row per point with its difference from the baseline, the report renders`, async (t) => {
    const out = join(tempDir(t), 'out');
    const r = await runSweep({ file: join(SWEEPS, file), sets: TINY, seeds: [1, 2], outDir: out, inProcess: main, profileSteps: 1 });
    t.true(r.rows.every((x) => x.status === 'ok'), JSON.stringify(r.rows.filter((x) => x.status !== 'ok').map((x) => [x.point, x.error])));
    const points = new Set(r.rows.map((x) => JSON.stringify(x.vary))).size;
    t.is(r.rows.length, points * 2);
    const summary = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n');
    t.is(summary.length, points + 1, 'a header and one row per point');
    const header = summary[0]!.split(',');
    if (r.sweep.baseline) {
      const diff = header.indexOf('val_ce_diff');
      t.true(diff > 0, 'a difference column');
      const rows = summary.slice(1).map((l) => l.split(','));
      t.is(rows.filter((row) => row[diff] === '').length, 1, 'every point but the baseline has a difference');
      const pairs = header.indexOf('val_ce_pairs');
      t.true(header.indexOf('val_ce_paired_diff') > diff && pairs > diff, 'the difference paired by seed beside it');
      t.deepEqual(rows.map((row) => row[pairs]).filter((n) => n !== '').map(Number), Array(points - 1).fill(2), 'paired over both seeds');
    }
    if (r.sweep.simulate) t.true(r.rows.every((x) => typeof x.projected_step_ms === 'number' && x.projected_step_ms > 0), 'every run projected');
    if (r.sweep.record.profile) t.true(r.rows.every((x) => typeof x.dispatch_overhead_fraction === 'number'), 'every run profiled');
    const charts = readdirSync(join(out, 'charts')).map((f) => f.replace(/\.svg$/, ''));
    await assertPageRenders(t, join(out, 'report.html'), charts);
    t.regex(readFileSync(join(out, 'summary.md'), 'utf8'), /^\| point \|/m);
  });
}
