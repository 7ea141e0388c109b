import test from 'ava';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../src/core/config/errors.js';
import { configParamCounts, countParams, initCoordinatorParams, initExpertParams } from '../src/core/model/params.js';
import { switchBlocks } from '../src/core/model/stages.js';
import { loadSweep } from '../src/apps/sweep/file.js';
import { runSweep, type SweepResult } from '../src/apps/sweep/run.js';
import { charClass, routeText } from '../src/apps/inspect/inspect.js';
import { main } from '../src/cli/main.js';
import { assertPageRenders } from './browser.js';
import { cfg, cli, CORPUS, interruptGroupWhen, tempDir } from './helpers.js';

const BASE = {
  data: { dataset: CORPUS, seq_len: 16, batch_size: 4 },
  model: { d_model: 16, n_heads: 2, n_layers: 2, d_ff: 32 },
  parallel: { transport: 'local', devices: 2 },
};
const SET = { 'train.steps': 4, 'train.eval_every': 0, 'train.eval_batches': 1, 'train.log_every': 2 };

function sweepFile(dir: string, body: Record<string, unknown>): string {
  const file = join(dir, 'sweep.yaml');
  writeFileSync(file, YAML.stringify(body));
  return file;
}

const root = mkdtempSync(join(tmpdir(), 'switch-sim-sweep-'));
let grid: SweepResult;
const gridDir = join(root, 'out');
const gridFile = sweepFile(root, { base: BASE, grid: { 'moe.n_experts': [2, 4], 'moe.capacity_factor': [1.0, 2.0] }, set: SET });
test.before(async () => {
  grid = await runSweep({ file: gridFile, outDir: gridDir });
});
test.after.always(() => rmSync(root, { recursive: true, force: true }));

test.serial('a 2 × 2 grid writes every output: runs, results.jsonl and .csv, sweep.yaml, report.html, SVG charts', (t) => {
  t.is(grid.rows.length, 4);
  t.true(grid.rows.every((r) => r.status === 'ok'), JSON.stringify(grid.rows.map((r) => r.error)));
  const jsonl = readFileSync(join(gridDir, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.deepEqual(jsonl.map((r) => [r['moe.n_experts'], r['moe.capacity_factor']]), [[2, 1], [2, 2], [4, 1], [4, 2]]);
  for (const k of ['seed', 'params_total', 'params_active_per_token', 'train_ce', 'val_ce', 'tokens_per_s', 'step_ms', 'dispatch_overhead_fraction',
    'drop_fraction', 'load_max_over_mean', 'projection_error', 'projection_note', 'run_note', 'wall_s', 'status', 'error', 'config_hash']) t.true(k in jsonl[0], `results have ${k}`);
  t.true(jsonl[0].params_total < jsonl[2].params_total, 'more experts, more parameters');
  t.is(jsonl[0].params_active_per_token, jsonl[1].params_active_per_token);
  t.true(jsonl.every((r) => r.drop_fraction >= 0 && r.drop_fraction <= 1));
  const csv = readFileSync(join(gridDir, 'results.csv'), 'utf8').trim().split('\n');
  t.is(csv[0], 'point,moe.n_experts,moe.capacity_factor,seed,params_total,params_active_per_token,train_ce,val_ce,tokens_per_s,step_ms,'
    + 'dispatch_overhead_fraction,drop_fraction,load_max_over_mean,projected_step_ms,projected_tokens_per_s,projection_error,projection_note,run_note,'
    + 'wall_s,status,error,config_hash');
  t.is(csv.length, 5);
  for (const r of grid.rows) {
    for (const f of ['metrics.jsonl', 'summary.json', 'config.yaml', 'point.yaml', 'log.txt']) t.true(existsSync(join(gridDir, 'runs', r.point, f)), `${r.point}/${f}`);
  }
  const resolved = YAML.parse(readFileSync(join(gridDir, 'sweep.yaml'), 'utf8'));
  t.is(resolved.base.model.d_model, 16);
  t.is(resolved.points.length, 4);
  t.deepEqual(readdirSync(join(gridDir, 'charts')).sort(), ['drop_fraction.svg', 'drops_steps.svg', 'load.svg', 'load_max_over_mean.svg', 'load_steps.svg', 'loss.svg', 'step_ms.svg', 'tokens_per_s.svg', 'train_ce_0.svg', 'train_ce_1.svg',
    'val_ce_0.svg', 'val_ce_1.svg', 'val_seconds.svg', 'val_steps.svg'], 'nothing for what the sweep did not record (profile, simulate)');
  const summary = readFileSync(join(gridDir, 'summary.csv'), 'utf8').trim().split('\n');
  t.is(summary.length, 5, 'one row per point (one seed each here)');
  const report = readFileSync(join(gridDir, 'report.html'), 'utf8');
  t.regex(report, /<title>switch-sim sweep: sweep<\/title>/, 'the title names the sweep, not its directory');
  t.regex(report, /dispatch-overhead fraction \(profiled steps\): not recorded by this sweep \(add `record: \[train, profile\]` to the sweep file\)/);
  t.regex(readFileSync(join(gridDir, 'charts', 'loss.svg'), 'utf8'), /^<svg/);
});

test.serial('--resume reruns nothing that finished', async (t) => {
  const stamp = (r: { point: string }) => statSync(join(gridDir, 'runs', r.point, 'summary.json')).mtimeMs;
  const before = grid.rows.map(stamp);
  const again = await runSweep({ file: gridFile, outDir: gridDir, resume: true });
  t.is(again.skipped, 4);
  t.deepEqual(again.rows.map(stamp), before);
  t.deepEqual(again.rows.map((r) => r.val_ce), grid.rows.map((r) => r.val_ce));
});

test.serial('report.html opens offline in headless Chromium: every chart draws its data, no console error, no request', async (t) => {
  await assertPageRenders(t, join(gridDir, 'report.html'), ['drop_fraction', 'drops_steps', 'load', 'load_max_over_mean', 'load_steps', 'loss', 'step_ms', 'tokens_per_s', 'train_ce_0', 'train_ce_1',
    'val_ce_0', 'val_ce_1', 'val_seconds', 'val_steps']);
  const rebuilt = await cli('report', gridDir);
  t.is(rebuilt.status, 0, rebuilt.stderr);
});

test.serial('report: exit 2 only for a directory that is not a sweep\'s (one line naming it); failing to write a report exits 1 with the error', async (t) => {
  const dir = tempDir(t);
  const one = async (...args: string[]) => {
    const r = await cli('report', ...args);
    return { status: r.status, lines: r.stderr.trim().split('\n').filter((l) => l.trim() && !/^Warning:/.test(l)) };
  };
  const missing = await one(join(dir, 'nowhere'));
  t.is(missing.status, 2);
  t.deepEqual(missing.lines, [`config error: report DIR must be a sweep directory (got "${join(dir, 'nowhere')}": no such directory)`]);
  const notSweep = await one(dir);
  t.is(notSweep.status, 2);
  t.regex(notSweep.lines.join('\n'), /^config error: report DIR must be a sweep directory, with sweep\.yaml \(got ".*": no sweep\.yaml\)$/);
  const malformed = join(dir, 'malformed');
  cpSync(gridDir, malformed, { recursive: true });
  appendFileSync(join(malformed, 'results.jsonl'), '{"point": "cut sho\n');
  for (const args of [[malformed], [malformed, '--markdown']]) {
    const r = await one(...args);
    t.is(r.status, 2, args.join(' '));
    t.regex(r.lines.join('\n'), /^config error: .*results\.jsonl line 5 must be a JSON object \(got "\{\\"point\\": \\"cut sho": .*\)$/);
  }
  // a sweep directory the report cannot be written into: a failure (exit 1 with the error), not bad input
  const blocked = join(dir, 'blocked');
  cpSync(gridDir, blocked, { recursive: true });
  rmSync(join(blocked, 'report.html'));
  mkdirSync(join(blocked, 'report.html'));
  const failed = await one(blocked);
  t.is(failed.status, 1);
  t.deepEqual(failed.lines.length, 1);
  t.regex(failed.lines[0]!, /^error: EISDIR: illegal operation on a directory/);
});

test.serial('a run its simulate cluster cannot hold: ok, with why it has no projection in its row, the report and report --markdown', async (t) => {
  const dir = tempDir(t);
  // 8 GPUs: a batch of 8 sequences splits over them, a batch of 4 does not
  const cluster = new URL('../configs/clusters/8xa100.yaml', import.meta.url).pathname;
  const file = sweepFile(dir, { base: BASE, grid: { 'data.batch_size': [8, 4] }, set: SET, simulate: cluster });
  const out = join(dir, 'out');
  // its points in this process: what is checked is the rows and the report, not how points start
  const r = await runSweep({ file, outDir: out, inProcess: main });
  t.deepEqual(r.rows.map((x) => x.status), ['ok', 'ok']);
  t.true(r.rows[0]!.projected_step_ms! > 0);
  t.is(r.rows[0]!.projection_error, null);
  t.is(r.rows[1]!.projected_step_ms, null);
  const why = /^plan\.global_batch \(or data\.batch_size\) must be divisible by the data-parallel ranks \(8 = 8 GPUs .*\) \(got 4\)$/;
  t.regex(r.rows[1]!.projection_error ?? '', why);
  const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n');
  t.regex(csv[2]!, new RegExp(`,"?${why.source.slice(1, -1)}"?,`));
  const note = `Not projected (simulate): 1 run (${r.rows[1]!.point}): ${r.rows[1]!.projection_error}`;
  t.true(readFileSync(join(out, 'report.html'), 'utf8').includes(note), 'the report says which run and why');
  const md = await cli('report', out, '--markdown');
  t.is(md.status, 0, md.stderr);
  t.true(md.stdout.includes(`\n${note}\n`), md.stdout);
});

test.serial('record: profile profiles each point\'s own trained model, from its final checkpoint, and leaves its run as training left it', async (t) => {
  const dir = tempDir(t);
  const file = sweepFile(dir, { base: BASE, grid: { 'moe.n_experts': [2, 4] }, set: SET, record: ['train', 'profile'] });
  const out = join(dir, 'out');
  // its points in this process, as shipped-sweeps runs them: the profile's outputs are checked, not how points start
  const r = await runSweep({ file, outDir: out, profileSteps: 1, inProcess: main });
  t.deepEqual(r.rows.map((x) => x.status), ['ok', 'ok'], JSON.stringify(r.rows.map((x) => x.error)));
  for (const row of r.rows) {
    const runDir = join(out, 'runs', row.point);
    const profile = JSON.parse(readFileSync(join(runDir, 'profile', 'profile.json'), 'utf8'));
    t.deepEqual(profile.from_checkpoint, { dir: realpathSync(join(runDir, 'checkpoints', 'step-4')), step: 4 }, `${row.point}: its own final checkpoint`);
    t.deepEqual(profile.steps, [7], 'after the 4 trained steps: a warm-up step (5), an unprofiled one, a profiled one');
    t.is(row.dispatch_overhead_fraction, profile.dispatch_overhead.fraction);
    t.deepEqual(readdirSync(join(runDir, 'checkpoints')), ['step-4'], 'the run\'s checkpoints as training left them');
    t.is(JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')).steps, 4);
  }
});

test.serial('a point with a bad value fails validation before anything runs, naming the key and the point', async (t) => {
  const dir = tempDir(t);
  const file = sweepFile(dir, { base: BASE, grid: { 'moe.n_experts': [4, 3] }, set: SET });
  t.throws(() => loadSweep(file), { instanceOf: ConfigError, message: /^config error: sweep .*sweep\.yaml: point 1 \(moe\.n_experts=3, seed=1337\): config error: moe\.n_experts must be divisible by parallel\.devices \(2\) \(got 3\)$/ });
  const r = await cli('sweep', file, '--out', join(dir, 'out'));
  t.is(r.status, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.false(existsSync(join(dir, 'out')), 'nothing ran');
  t.throws(() => loadSweep(sweepFile(dir, { base: BASE, grid: { 'moe.n_expert': [4] } })), { message: /grid: unknown key moe\.n_expert \(did you mean moe\.n_experts\?\)/ });
  t.throws(() => loadSweep(sweepFile(dir, { base: BASE, seed: [1] })), { message: /unknown key seed \(did you mean seeds\?\)/ });
  t.throws(() => loadSweep(sweepFile(dir, { base: BASE, record: 'trace' })), { message: /record must be train, profile or both \(got "trace"\)/ });
  t.throws(() => loadSweep(sweepFile(dir, { base: BASE, runs: [{ label: 'a b' }] })), { message: /runs\[0\]\.label must be a name of letters, digits/ });
  t.throws(() => loadSweep(sweepFile(dir, { base: BASE, runs: [{ label: 'a' }, { label: 'a', 'moe.top_k': 2 }] })), { message: /runs: every label must be different \(got a, a\)/ });
  // a label names the point: its directory, and what charts and tables call it; it sets no config key
  const labelled = loadSweep(sweepFile(dir, { base: BASE, runs: [{ label: 'plain' }, { label: 'two', 'moe.top_k': 2 }], baseline: { label: 'plain' } }));
  t.deepEqual(labelled.points.map((p) => p.name), ['0-plain-seed=1337', '1-two-seed=1337']);
  t.deepEqual(labelled.points.map((p) => p.config.moe.top_k), [1, 2]);
  t.deepEqual(labelled.keys, ['label', 'moe.top_k']);
});

test.serial('a point that fails at run time is recorded with its error, the sweep runs the rest and exits 1, the last line counting the failures', async (t) => {
  const dir = tempDir(t);
  const file = sweepFile(dir, {
    base: BASE, set: SET, seeds: [1, 2],
    runs: [{ 'parallel.transport': 'local' }, { 'parallel.transport': 'threads', 'parallel.fault.device': 1, 'parallel.fault.step': 2 }],
  });
  const out = join(dir, 'out');
  const r = await cli('sweep', file, '--out', out, '--jobs', '2'); // two points at a time
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr.trim().split('\n').at(-1)!, /^error: 2 of 4 points failed \(their errors are in .*results\.csv\); rerun them with --resume --out /);
  const rows = readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.deepEqual(rows.map((x) => x.status), ['ok', 'ok', 'failed', 'failed']);
  t.regex(rows[2].error, /^error: device 1 \(experts 2,3\) failed during forward of Switch layer 0/);
  t.true(existsSync(join(out, 'report.html')), 'the report is written with the failures in it');
  t.not(rows[0].val_ce, rows[1].val_ce, 'seeds differ');
  const resumed = await runSweep({ file, outDir: out, resume: true, inProcess: main }); // in this process
  t.is(resumed.skipped, 2, 'failed points run again on --resume');
});

test.serial('--dry-run lists the points with parameter counts that match the model', async (t) => {
  const dir = tempDir(t);
  const file = sweepFile(dir, { base: BASE, grid: { 'moe.n_experts': [2, 8] }, seeds: [1, 2] });
  const r = await cli('sweep', file, '--dry-run');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^sweep sweep: 4 runs, 2 points × 2 seeds \(swept: moe\.n_experts; records train\)\n/);
  t.is(r.stdout.trim().split('\n').length, 5);
  const config = cfg('model.d_model=16', 'model.n_layers=3', 'model.switch_every=2', 'moe.n_experts=8', 'moe.top_k=2');
  const experts = switchBlocks(config).length * 8 * countParams(initExpertParams(config, 1, 0));
  const counts = configParamCounts(config, 50);
  t.is(counts.total, countParams(initCoordinatorParams(config, 50)) + experts);
  t.is(counts.activePerToken, countParams(initCoordinatorParams(config, 50)) + experts / 4);
});

test.serial('switch-sim inspect: characters by expert with drops marked, exactly those over capacity; the page renders in Chromium', async (t) => {
  const ckpt = join(gridDir, 'runs', grid.rows[3]!.point);
  const r = await routeText({ checkpoint: ckpt, sets: ['moe.eval_capacity_factor=0.5', 'moe.min_capacity=1'] });
  t.is(r.layers, 2);
  const layer0 = r.chars.filter((c) => c.layer === 0);
  t.is(layer0.length, 4 * 16);
  const C = Math.max(1, Math.floor((0.5 * r.groupSize) / r.experts));
  t.true(layer0.some((c) => c.dropped));
  for (const c of layer0) {
    // position policy: a token is dropped exactly when C earlier tokens of its group chose its expert
    const group = Math.floor((c.row * 16 + c.col) / r.groupSize);
    const before = layer0.filter((o) => Math.floor((o.row * 16 + o.col) / r.groupSize) === group && o.pos < c.pos && o.expert === c.expert).length;
    t.is(c.dropped, before >= C, `row ${c.row} col ${c.col}`);
    t.true(c.prob > 0 && c.prob <= 1);
  }
  t.deepEqual(['a', ' ', '\n', ',', '7'].map(charClass), ['letter', 'space', 'newline', 'punctuation', 'digit or other']);
  const out = join(root, 'inspect.html');
  const viaCli = await cli('inspect', '--checkpoint', ckpt, '--text', 'Call me Ishmael. Some years ago, never mind how long.', '--out', out);
  t.is(viaCli.status, 0, viaCli.stderr);
  await assertPageRenders(t, out, ['drops', 'text_0', 'text_1']);
});

test.serial('Ctrl-C to the whole process group (as a terminal sends it): each point is signalled once, saves a checkpoint, and --resume continues it from there', async (t) => {
  const dir = tempDir(t);
  const file = sweepFile(dir, { base: BASE, grid: { 'moe.n_experts': [2, 4, 8] }, set: { ...SET, 'train.steps': 200, 'train.log_every': 10, 'train.checkpoint_every': 1000 } });
  const out = join(dir, 'out');
  const second = join(out, 'runs', '1-n_experts=4-seed=1337');
  // SIGINT to the sweep's process group once the first point is done and the second is training
  const { code, stderr } = await interruptGroupWhen(['sweep', file, '--out', out], (stdout) => /\[1\/3\]/.test(stdout) && trainedSteps(second) > 0);
  t.is(code, 130, stderr);
  t.regex(stderr, /interrupted: kept 1 finished points; continue with --resume --out /);
  t.is(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').length, 1);
  t.true(existsSync(join(out, 'report.html')));
  const saved = readdirSync(join(second, 'checkpoints')).map((d) => Number(/^step-(\d+)$/.exec(d)?.[1])).filter((n) => n > 0);
  t.is(saved.length, 1, 'the interrupted point saved its checkpoint (one SIGINT, not two)');
  const resumed = await cli('sweep', file, '--out', out, '--resume');
  t.is(resumed.status, 0, resumed.stderr);
  t.regex(resumed.stdout, /skipped 1 finished points/);
  t.is(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').length, 3);
  t.regex(readFileSync(join(second, 'log.txt'), 'utf8'), new RegExp(`resumed from step ${saved[0]}\\b`));
  const steps = readFileSync(join(second, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => typeof r.loss === 'number').map((r) => r.step);
  t.deepEqual(steps, Array.from({ length: 20 }, (_, i) => 10 * (i + 1)), 'every logged step once');
});

/** Logged training steps of a run so far. */
function trainedSteps(runDir: string): number {
  const f = join(runDir, 'metrics.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l.includes('"loss"')).length : 0;
}

