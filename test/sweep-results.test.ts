import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { sweepCharts } from '../src/apps/sweep/charts.js';
import { summaryMarkdown } from '../src/apps/sweep/report.js';
import { collectResult, writeResults, type ResultRow } from '../src/apps/sweep/results.js';
import { summarise } from '../src/apps/sweep/summary.js';
import { loadCluster } from '../src/sim/cluster.js';
import { clusterFor } from '../src/sim/machine.js';
import { project } from '../src/sim/project.js';
import { runWorkload } from '../src/sim/workload.js';
import { cfg, tempDir } from './helpers.js';

// A sweep's rows and report from run directories written here (no training): the projection onto this
// machine, a run whose training time is unknown, and what the load figures are called.

const MACHINE = 'configs/clusters/this-machine.yaml';
const KEY = 'moe.capacity_factor';
const STEP = 125; // ms a step, measured
const NOTE = 'times and tokens_per_s unknown: part of this run was trained by a version that did not record them';

/** A finished 4-device coordinator run of 8 steps in `dir`: config, two logged steps with routing, summary.json. */
function fakeRun(dir: string, capacity: number, timeKnown: boolean): string {
  mkdirSync(dir, { recursive: true });
  const config = cfg('parallel.devices=4', 'moe.n_experts=4', `${KEY}=${capacity}`);
  writeFileSync(join(dir, 'config.yaml'), YAML.stringify(config));
  const tokensPerS = (config.data.batch_size * config.data.seq_len) / (STEP / 1000);
  const layer = { group_expert_counts: Array.from({ length: 4 }, () => [128, 64, 32, 32]), tokens_per_expert: [400, 256, 128, 128],
    drop_fraction: 0.2, load_max_over_mean: 400 / 228, load_max_over_mean_first: 2 };
  const metrics = [4, 8].flatMap((step) => [{ step, loss: 3, ce: 3, tokens_per_s: tokensPerS, layers: [layer, layer] }, { step, val_ce: 3.1 }]);
  writeFileSync(join(dir, 'metrics.jsonl'), metrics.map((m) => `${JSON.stringify(m)}\n`).join(''));
  const summary = { steps: 8, train_s: timeKnown ? 1 : null, tokens_per_s: timeKnown ? tokensPerS : null, train_ce: 3, val_ce: null,
    params_total: 1, params_active_per_token: 1, ...(timeKnown ? {} : { note: NOTE }) };
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary));
  return dir;
}

const point = (name: string, capacity: number) => ({ name, vary: { [KEY]: capacity }, seed: 1, config: cfg(`${KEY}=${capacity}`) });

test('a sweep projecting onto this machine projects each run with its own device threads, and carries the note on its layout', async (t) => {
  const dir = fakeRun(tempDir(t), 1, true);
  const row = await collectResult(point('p', 1), dir, 'ok', null, 1, MACHINE);
  const machine = loadCluster(MACHINE);
  const w = runWorkload(dir);
  const threads = project(clusterFor(machine, w.config).cluster, w);
  t.is(threads.gpus, 4);
  t.is(row.projected_step_ms, threads.step_ms);
  t.is(row.projected_tokens_per_s, threads.tokens_per_s);
  const one = project(machine, w).step_ms; // the file's own gpus_per_node: 1, what the row used to say
  t.true(Math.abs(one - threads.step_ms) > 0.05 * threads.step_ms, `4 threads ${threads.step_ms} ms vs 1 thread ${one} ms`);
  t.is(row.projection_note, 'this-machine was calibrated on spmd runs; this one\'s parallel.layout is coordinator, which the fit never saw, '
    + 'so its projection is that of spmd threads');
  // a GPU cluster is what its file says: no note
  const gpus = await collectResult(point('p', 1), dir, 'ok', null, 1, 'configs/clusters/8xa100.yaml');
  t.is(gpus.projection_note, null);
  t.is(gpus.projection_error, null);
});

/** A sweep directory of two points (capacity 1 and 2, seed 1): the second's training time unknown. */
async function sweepDir(t: { teardown: (f: () => void) => void }): Promise<{ dir: string; rows: ResultRow[] }> {
  const dir = tempDir(t);
  const names = ['cf1', 'cf2'];
  const rows = await Promise.all(names.map((name, i) =>
    collectResult(point(name, i + 1), fakeRun(join(dir, 'runs', name), i + 1, i === 0), 'ok', null, 1, MACHINE)));
  writeResults(dir, [KEY], rows);
  const resolved = { name: 's', grid: { [KEY]: [1, 2] }, baseline: { [KEY]: 1 }, points: names.map((name) => ({ name })) };
  writeFileSync(join(dir, 'sweep.yaml'), YAML.stringify(resolved));
  return { dir, rows };
}

test('a run whose training time is unknown has no step_ms (not 0), and the row, summary and report say why', async (t) => {
  const { dir, rows } = await sweepDir(t);
  t.is(rows[0]!.step_ms, 1000 / 8, 'train_s 1 over 8 steps');
  t.is(rows[0]!.run_note, null);
  t.is(rows[1]!.step_ms, null);
  t.is(rows[1]!.tokens_per_s, null);
  t.is(rows[1]!.run_note, NOTE);
  const points = summarise(rows, [KEY], { [KEY]: 1 });
  t.is(points[1]!.estimates.step_ms, undefined, 'no estimate from an unknown time');
  const md = summaryMarkdown(dir);
  t.true(md.includes(`\nNo tokens_per_s or step_ms: 1 run (cf2): ${NOTE}\n`), md);
  t.true(md.includes('\nProjection note (simulate): 2 runs (cf1, cf2): this-machine was calibrated on spmd runs;'), md);
  t.regex(md, /\nΔ Welch: .* Δ paired: the mean over the seeds both ran of \(point − baseline\) at the same seed/);
  // validation loss against training time here: the run without a time is left out, not drawn at 0 s
  const { charts } = sweepCharts(dir, rows, [KEY], points);
  const values = (id: string) => (charts.find((c) => c.id === id)!.spec as { data: { values: { point: string; x: number }[] } }).data.values;
  const [cf1, cf2] = ['capacity_factor=1', 'capacity_factor=2'];
  t.deepEqual(values('val_steps').map((v) => [v.point, v.x]), [[cf1, 4], [cf1, 8], [cf2, 4], [cf2, 8]]);
  t.deepEqual(values('val_seconds').map((v) => [v.point, v.x]), [[cf1, 0.5], [cf1, 1]], '125 ms a step: 0.5 s at step 4; cf2 left out');
});

test('the load figures are called what they are: kept token-choices (all k, after drops) over the mean; the first-choice figure named', async (t) => {
  const { dir, rows } = await sweepDir(t);
  const { charts } = sweepCharts(dir, rows, [KEY], summarise(rows, [KEY], { [KEY]: 1 }));
  const steps = charts.find((c) => c.id === 'load_steps')!;
  t.regex(steps.note ?? '', /^The busiest expert's kept token-choices \(all k, after capacity drops\) over the mean/);
  t.regex(steps.note ?? '', /load_max_over_mean_first is the first-choice figure, before drops/);
  t.regex(charts.find((c) => c.id === 'load_max_over_mean')!.title, /^load: busiest expert's kept token-choices over the mean/);
  t.regex(charts.find((c) => c.id === 'load')!.note ?? '', /share of the kept token-choices \(all k, after capacity drops/);
  t.false(charts.some((c) => /routed tokens/.test(`${c.title} ${c.note}`)), 'no "routed tokens" for kept token-choices');
});

test('report --baseline POINT: the differences are taken from that point; a label that is no point is refused', async (t) => {
  const { dir } = await sweepDir(t);
  const cells = (md: string, label: string) =>
    md.split('\n').find((l) => l.startsWith(`| ${label}`))!.split('|').map((c) => c.trim());
  const [cf1, cf2] = ['capacity_factor=1', 'capacity_factor=2'];
  const asFiled = summaryMarkdown(dir, ['projected_step_ms']);
  const pivoted = summaryMarkdown(dir, ['projected_step_ms'], cf2);
  t.is(cells(asFiled, cf1)[1], `${cf1} (baseline)`);
  t.is(cells(pivoted, cf2)[1], `${cf2} (baseline)`);
  const delta = (md: string, label: string) => Number(cells(md, label)[4]); // | point | seeds ok | mean | Δ Welch |
  t.true(Number.isFinite(delta(asFiled, cf2)) && delta(asFiled, cf2) !== 0, cells(asFiled, cf2).join('|'));
  t.is(delta(pivoted, cf1), -delta(asFiled, cf2), 'cf1 − cf2 is −(cf2 − cf1)');
  const e = t.throws(() => summaryMarkdown(dir, ['projected_step_ms'], 'cf9'));
  t.is(e?.name, 'SweepDirError');
  t.regex(e?.message ?? "", /^config error: report --baseline must name a point of the sweep, one of capacity_factor=1, capacity_factor=2 \(got "cf9"\)$/);
});
