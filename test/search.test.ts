import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../src/core/config/load.js';
import { loadCluster } from '../src/sim/cluster.js';
import { project } from '../src/sim/project.js';
import { parseSpace } from '../src/sim/search/narrow.js';
import { searchPlans } from '../src/sim/search/search.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { assertPageRenders } from './browser.js';
import { cli, tempDir } from './helpers.js';

// simulate --search: the ranking is the projection's own (identical numbers, whatever the thread count), the
// JSON line's shape, the page, and the one-line refusals.

const MODEL = (name: string) => new URL(`../configs/models/${name}.yaml`, import.meta.url).pathname;
const CLUSTER = (name: string) => new URL(`../configs/clusters/${name}.yaml`, import.meta.url).pathname;
/** `switch-sim simulate ARGS` in this process (helpers' cli; serial tests): exit code, stdout, stderr */
const simulate = (...args: string[]) => cli('simulate', ...args);
/** Mixtral-8x7B on 64×8 H100 as NVIDIA's recipes lay it out (pp 4, vpp 1 or 8, ZeRO-1) and the EP/TP choices around them */
const PUBLISHED = ['plan.pp=4', 'plan.vpp=1,8', 'plan.decoder_first_pipeline_num_layers=0', 'plan.decoder_last_pipeline_num_layers=0',
  'plan.account_for_embedding_in_pipeline_split=false', 'plan.account_for_loss_in_pipeline_split=false', 'plan.tp=1,2', 'plan.ep=4,8',
  'plan.micro_batch=1', 'plan.shard=optimizer', 'plan.recompute=selective', 'plan.recompute_modules=[layernorm,moe_act]',
  'plan.overlap=none', 'plan.dispatcher=alltoall'];

test('a search over a few published plans ranks them as projecting each one does, with the same numbers', async (t) => {
  const config = resolveConfig({ file: MODEL('mixtral-8x7b') }).config;
  const cluster = loadCluster(CLUSTER('64x8xh100'));
  const r = await searchPlans(cluster, uniformWorkload(config), parseSpace(PUBLISHED), { threads: 1 });
  // vpp 1 or 8 × (tp, etp) (1,1) (2,2) (2,1) × ep 4 or 8: 12 plans, each accepted
  t.is(r.considered, 12);
  t.is(r.projected, 12);
  const direct = r.fitting.map((s) => project(cluster, uniformWorkload({ ...config, plan: s.plan })));
  t.deepEqual(r.fitting.map((s) => [s.step_ms, s.tokens_per_s_per_gpu, s.mfu, s.memory_gb_per_gpu, s.breakdown_ms]),
    direct.map((p) => [p.step_ms, p.tokens_per_s_per_gpu, p.mfu, p.memory_gb_per_gpu, p.breakdown_ms]));
  const sorted = [...direct].sort((a, b) => a.step_ms - b.step_ms);
  t.deepEqual(direct.map((p) => p.step_ms), sorted.map((p) => p.step_ms));
});

test('the result does not depend on the thread count: 1 thread and 2 threads give the same plans, order and numbers', async (t) => {
  const config = resolveConfig({ file: MODEL('qwen3-30b-a3b') }).config;
  const cluster = loadCluster(CLUSTER('2x8xh100'));
  const narrow = parseSpace(['plan.pp=1,2', 'plan.vpp=1', 'plan.micro_batch=1', 'plan.dispatcher=alltoall', 'plan.overlap=none',
    'plan.shard=optimizer,full']);
  const one = await searchPlans(cluster, uniformWorkload(config), narrow, { threads: 1 });
  const two = await searchPlans(cluster, uniformWorkload(config), narrow, { threads: 2 });
  t.true(one.projected > 128, `${one.projected} plans: more than two chunks of 64`);
  const strip = (r: typeof one) => ({ ...r, context: undefined, seconds: 0, threads: 0 });
  t.deepEqual(strip(two), strip(one));
});

test.serial('simulate --search --json: the counts and the top plans, fastest first, each with its Megatron-LM flags; search.html', async (t) => {
  const dir = tempDir(t);
  const r = await simulate('--cluster', CLUSTER('64x8xh100'), '--config', MODEL('mixtral-8x7b'), '--search',
    '--top', '3', ...PUBLISHED.flatMap((s) => ['--space', s]), '--out', dir, '--json', '--threads', '1');
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const json = JSON.parse(lines[lines.length - 1]!);
  t.deepEqual(Object.keys(json), ['considered', 'rejected', 'projected', 'memory', 'threads', 'seconds', 'plans_per_s', 'plans']);
  t.like(json, { considered: 12, rejected: { divisibility: 0, memory: 0 }, projected: 12, memory: { by_bound: 0, by_model: 0 } });
  t.is(json.plans.length, 3);
  for (const [i, p] of json.plans.entries()) {
    t.deepEqual(Object.keys(p), ['rank', 'plan', 'line', 'megatron_args', 'step_ms', 'tokens_per_s_per_gpu', 'mfu', 'memory_gb_per_gpu',
      'fits', 'exposed_a2a_ms', 'bubble_ms', 'bubble_fraction', 'straggler_factor', 'breakdown_ms']);
    t.is(p.rank, i + 1);
    t.true(i === 0 || p.step_ms >= json.plans[i - 1].step_ms);
    t.regex(p.megatron_args, /^--seq-length 4096 --global-batch-size 1024 --micro-batch-size 1 --bf16 .*--pipeline-model-parallel-size 4 /);
    t.like(p.plan, { pp: 4, shard: 'optimizer', micro_batch: 1 });
  }
  t.regex(r.stdout, /^considered 12 plans: 0 refused \(divisibility and Megatron-Core's other rules\), 0 over memory/m);
  t.regex(r.stdout, /^why #1 beats #2 by /m);
  t.true(existsSync(join(dir, 'search.html')));
});

test.serial('search.html renders in Chromium: the plans chart drew its dots, no console error, no request', async (t) => {
  const dir = tempDir(t);
  const html = join(dir, 'page.html');
  const r = await simulate('--cluster', CLUSTER('64x8xh100'), '--config', MODEL('mixtral-8x7b'), '--search',
    ...PUBLISHED.flatMap((s) => ['--space', s]), '--html', html, '--threads', '1');
  t.is(r.status, 0, r.stderr);
  t.regex(readFileSync(html, 'utf8'), /The fastest plans/);
  await assertPageRenders(t, html, ['plans']);
});

test.serial('bad input exits 2 with one line naming the flag or key, the rule and the value', async (t) => {
  const base = ['--cluster', CLUSTER('64x8xh100'), '--config', MODEL('mixtral-8x7b')];
  const refusals: [string[], RegExp][] = [
    [['--search', '--space', 'plan.bogus=1'], /^config error: --space must name a searched plan key: plan\.tp\|.*\(got "plan\.bogus"\)$/],
    [['--search', '--space', 'plan.dispatcher=alltoall,deepep'],
      /^config error: --space plan\.dispatcher must be one of alltoall\|allgather\|flex \(got "deepep"\)$/],
    [['--search', '--space', 'plan.ep=two'], /^config error: --space plan\.ep must be a number \(got "two"\)$/],
    [['--search', '--set', 'plan.tp=2', '--space', 'plan.tp=1,2'],
      /^config error: --space plan\.tp must not narrow a key --set or --megatron-args pins \(got \[1,2\]\)$/],
    [['--search', '--top', '-1'], /--top must be an integer >= 0 \(got "-1"\)$/],
    [['--space', 'plan.tp=1'], /^config error: --space, --top, --html and --threads need --search \(got --space\)$/],
    [['--set', 'plan.redundant_experts=8'], /^config error: plan\.redundant_experts must be 0 without a run's recorded routing .*\(got 8\)$/],
  ];
  for (const [args, message] of refusals) {
    const r = await simulate(...base, ...args);
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    const errors = r.stderr.trim().split('\n');
    t.is(errors.length, 1, r.stderr);
    t.regex(errors[0]!, message);
  }
});
