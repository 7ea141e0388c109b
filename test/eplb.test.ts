import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { loadCluster } from '../src/sim/cluster.js';
import { balancedPacking, contiguousLoads, placeExperts, replicate, stragglerFactor } from '../src/sim/eplb.js';
import { withReplicas } from '../src/sim/replicas.js';
import { parseSpace } from '../src/sim/search/narrow.js';
import { searchPlans } from '../src/sim/search/search.js';
import { runWorkload } from '../src/sim/workload.js';
import { cfg, cli, tempDir } from './helpers.js';

// DeepSeek's EPLB placement (replicate the heaviest expert per copy, pack copies heaviest first onto the least-loaded
// GPU with room), worked by hand, and what it does to a recorded run's projection.

const CLUSTER = (name: string) => new URL(`../configs/clusters/${name}.yaml`, import.meta.url).pathname;
const near = (xs: number[], d = 2) => xs.map((x) => Number(x.toFixed(d)));

test('loads [10, 4, 3, 1], 2 extra slots, 2 GPUs of 3 slots: 8.33 and 9.67 against 11 and 7 (EPLB\'s example)', (t) => {
  // replicate: 10 > 4 → E0 (5 a copy), 5 > 4 → E0 again (3.33 a copy)
  t.deepEqual(replicate([10, 4, 3, 1], 2), { copies: [3, 1, 1, 1], added: [0, 0] });
  // pack (3 a GPU) E1 4 → G0; E0 3.33 → G1; E0 → G1 (3.33 < 4); E0 → G0 (4 < 6.67); E2 3 → G1 (6.67 < 7.33, full); E3 → G0
  const g = placeExperts([10, 4, 3, 1], { redundant: 2, gpus: 2 });
  t.like(g, { policy: 'global', gpus: [[1, 0, 3], [0, 0, 2]], copies: [3, 1, 1, 1] });
  t.deepEqual(near(g.gpuLoads), [8.33, 9.67]);
  t.is(stragglerFactor(g.gpuLoads).toFixed(4), (9.6667 / 9).toFixed(4));
  // without copies EPLB's packing gives {E0, E3} 11 and {E1, E2} 7; switch-sim's contiguous order {E0, E1} 14, {E2, E3} 4
  t.deepEqual(placeExperts([10, 4, 3, 1], { redundant: 0, gpus: 2 }).gpuLoads, [11, 7]);
  t.deepEqual(contiguousLoads([10, 4, 3, 1], 2), [14, 4]);
  // hierarchical (2 groups, 2 nodes of 1 GPU): a group a node, each replicates inside: {E0, E1, E0} 14, {E2, E3, E2} 4
  const h = placeExperts([10, 4, 3, 1], { redundant: 2, gpus: 2, groups: 2, nodes: 2 });
  t.like(h, { policy: 'hierarchical', gpus: [[0, 0, 1], [2, 2, 3]], copies: [2, 1, 2, 1] });
  t.deepEqual(h.gpuLoads, [14, 4]);
});

test('loads [6, 6, 2, 2, 1, 1, 1, 1], 4 extra slots, 4 GPUs of 3: every GPU 5, against 12, 4, 2, 2 in switch-sim\'s order', (t) => {
  // replicate: 6 = 6 → E0 (3); 6 > 3 → E1 (3); 3 = 3 → E0 (2); 3 > 2 → E1 (2)
  t.deepEqual(replicate([6, 6, 2, 2, 1, 1, 1, 1], 4), { copies: [3, 3, 1, 1, 1, 1, 1, 1], added: [0, 1, 0, 1] });
  // eight copies of 2 (E0 E1 E2 E3, then the extra E0 E1 E0 E1) go round the GPUs twice; the four 1s last
  const p = placeExperts([6, 6, 2, 2, 1, 1, 1, 1], { redundant: 4, gpus: 4 });
  t.deepEqual(p.gpus, [[0, 0, 4], [1, 1, 5], [2, 0, 6], [3, 1, 7]]);
  t.deepEqual(p.gpuLoads, [5, 5, 5, 5]);
  t.is(stragglerFactor(p.gpuLoads), 1);
  t.is(stragglerFactor(contiguousLoads([6, 6, 2, 2, 1, 1, 1, 1], 4)), 12 / 5);
  // packing alone: equal counts, ties to the lower pack
  t.deepEqual(balancedPacking([1, 1, 1, 1], 2), [[0, 2], [1, 3]]);
  t.throws(() => placeExperts([1, 2, 3], { redundant: 2, gpus: 2 }),
    { message: 'config error: plan.redundant_experts must make moe.n_experts (3) + it divisible by plan.ep (2) (got 2)' });
});

/**
 * 8 experts, 4 routing groups each sending them 32, 16, 8, 4, 2, 1, 0.5, 0.5 of every 64: a run without training,
 * dropless (with drops the hot expert's overflow is never computed) and large enough that the experts' compute counts
 */
const SKEW = [64, 32, 16, 8, 4, 2, 1, 1];
function fakeRun(t: { teardown: (f: () => void) => void }): string {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'config.yaml'), YAML.stringify(cfg('parallel.devices=4', 'moe.n_experts=8', 'moe.drop_tokens=false',
    'model.d_model=1024', 'model.d_ff=4096', 'model.n_heads=8', 'data.seq_len=1024', 'data.batch_size=64')));
  const layers = [0, 1].map(() => ({ group_expert_counts: Array.from({ length: 4 }, () => SKEW.map((n) => n / 2)) }));
  writeFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: 1, tokens_per_s: 1000, layers })}\n`);
  return dir;
}

test('a run\'s loads split over the copies: 8 extra on ep 8 (2 slots a GPU) take the straggler factor from 4 to 4/3', (t) => {
  const w = runWorkload(fakeRun(t));
  const placed = withReplicas({ ...w, config: { ...w.config, plan: { ...w.config.plan, redundant_experts: 8 } } },
    loadCluster(CLUSTER('8xh100')), 8, 1);
  // copies: E0 6 (10.67 each), E1 3 (10.67), E2 2 (8), the rest 1; packed: 21.33, 18.67 ×3, 14.67, 12.67, 11.67 ×2
  t.like(placed.report, { redundant: 8, policy: 'global', straggler_before: 4 });
  t.is(placed.report!.straggler_after.toFixed(6), (64 / 3 / 16).toFixed(6));
  t.is(placed.workload.config.moe.n_experts, 16);
  const row = placed.workload.steps[0]!.layers[0]!.routed[0]!;
  t.is(row.length, 16);
  t.is(row.reduce((a, b) => a + b, 0), SKEW.reduce((a, b) => a + b, 0) / 2); // every token still routed once
  t.deepEqual(near(row.slice(0, 4)), near([32 / 6, 32 / 6, 16 / 3, 8 / 2])); // GPU 0: E0 twice, GPU 1: E1 and E2
});

test.serial('simulate --run with plan.redundant_experts: the note says the straggler factor and the step before and after', async (t) => {
  const run = fakeRun(t);
  const r = await cli('simulate', '--cluster', CLUSTER('8xh100'), '--run', run, '--set', 'plan.redundant_experts=8',
    '--out', tempDir(t));
  t.is(r.status, 0, r.stderr);
  const m = new RegExp('redundant experts 8 \\(EPLB, global policy, ep 8\\): straggler factor \\(max GPU load over the EP group\'s '
    + 'mean, mean of 2 Switch layers\\) 4\\.000 → 1\\.333; step ([\\d.]+) → ([\\d.]+) ms').exec(r.stdout);
  t.truthy(m, r.stdout);
  t.true(Number(m![2]) < Number(m![1]), `${m![1]} → ${m![2]} ms`);
});

test('simulate --search over a run considers plan.redundant_experts: at every ep > 1, 8 copies project faster under the skew', async (t) => {
  const w = runWorkload(fakeRun(t));
  const narrow = parseSpace(['plan.redundant_experts=0,8', 'plan.pp=1', 'plan.tp=1', 'plan.micro_batch=8', 'plan.shard=optimizer',
    'plan.recompute=none', 'plan.overlap=none', 'plan.dispatcher=alltoall']);
  const r = await searchPlans(loadCluster(CLUSTER('8xh100')), w, narrow, { threads: 1 });
  const step = (ep: number, copies: number) => r.fitting.find((p) => p.plan.ep === ep && p.plan.redundant_experts === copies)!.step_ms;
  t.is(r.projected, 8); // ep 1, 2, 4, 8 × 0 or 8 copies
  for (const ep of [2, 4, 8]) t.true(step(ep, 8) < step(ep, 0), `ep ${ep}: ${step(ep, 0)} → ${step(ep, 8)} ms`);
});
