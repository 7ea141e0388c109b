import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { validateCluster, type Cluster } from '../src/sim/cluster.js';
import { project } from '../src/sim/project.js';
import { replayFixedKeys } from '../src/sim/replay.js';
import { runWorkload, uniformWorkload, type Workload } from '../src/sim/workload.js';
import { cfg, cli, tempDir } from './helpers.js';

// What a replay of recorded routing is charged: the rows dispatch sends, the groups a token reaches.
// Every expected number is worked by hand from the routing below.

/** one node of 8 GPUs with round numbers (bf16: 2 bytes a value) */
const cluster: Cluster = validateCluster({
  name: 'test', nodes: 1, gpus_per_node: 8,
  gpu: { name: 'test', tflops_bf16: 100, tflops_fp32: 10, hbm_gbps: 1000, memory_gb: 80, matmul_efficiency: 1 },
  intra_node: { gbps: 100, latency_us: 2 }, inter_node: { gbps: 10, latency_us: 5 }, all_to_all: 'flat', precision: 'bf16',
});

/** 8 devices of 2 sequences of 64 tokens: on 8 GPUs (ep 8, dp 8) each GPU routes T = 128 tokens to 8 experts, top-1 */
const shape = ['parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=16', 'data.seq_len=64', 'moe.capacity_factor=1.25', 'moe.min_capacity=4'];
/** every recorded group sends the experts 64, 32, 16, 8, 4, 2, 1, 1 of its 128 tokens */
const SKEW = [64, 32, 16, 8, 4, 2, 1, 1];
const replay = (...sets: string[]): Workload => {
  const config = cfg(...shape, ...sets);
  const layers = [0, 1].map(() => ({ routed: Array.from({ length: 8 }, () => [...SKEW]) }));
  return { ...uniformWorkload(config), source: 'run', steps: [{ step: 1, layers }] };
};
const d = cfg().model.d_model;
/** bytes one layer moves between GPUs (4 all-to-alls: dispatch and combine, forward and backward) when every GPU sends each of its 7 peers `rows` rows */
const layerBytes = (rows: number) => 4 * 8 * 7 * rows * d * 2;

test('padded dispatch with moe.drop_tokens false drops nothing: every expert gets the busiest expert\'s rows as slots', (t) => {
  const p = project(cluster, replay('plan.dispatch=padded', 'moe.drop_tokens=false'));
  const layer = p.layers[0]!;
  t.is(layer.drop_fraction, 0);
  // C = max(min_capacity 4, busiest 64) = 64 slots for each of the 8 experts: 64 rows to each peer
  t.is(layer.bytes_intra_node, layerBytes(64));
  t.is(layer.bytes_inter_node, 0);
});

test('padded dispatch that drops: C = ⌊1.25 · 128 / 8⌋ = 20 slots an expert, (44 + 12) of 128 choices dropped', (t) => {
  const layer = project(cluster, replay('plan.dispatch=padded')).layers[0]!;
  t.is(layer.drop_fraction, 56 / 128);
  t.is(layer.bytes_intra_node, layerBytes(20));
});

test('dropless dispatch sends the kept rows: all of them without dropping, min(routed, 20) with it', (t) => {
  // GPU i holds expert i, so GPU i receives SKEW[i] rows from each of its 7 peers; all GPUs: 7 · Σ SKEW = 7 · 128
  const all = project(cluster, replay('moe.drop_tokens=false')).layers[0]!;
  t.is(all.drop_fraction, 0);
  t.is(all.bytes_intra_node, 4 * 7 * 128 * d * 2);
  // kept: 20, 20, 16, 8, 4, 2, 1, 1 = 72 a source
  const kept = project(cluster, replay()).layers[0]!;
  t.is(kept.drop_fraction, 56 / 128);
  t.is(kept.bytes_intra_node, 4 * 7 * 72 * d * 2);
});

/** top-2 of 16 experts, uniform, each token's experts in at most `limit` of 8 device groups (the EP group's 8 GPUs, 2 experts each) */
const limited = (limit: number, recorded?: { groupsPerToken: number; expertGroups: number }): Workload => {
  const w = uniformWorkload(cfg(...shape, 'moe.n_experts=16', 'moe.top_k=2', ...(limit > 0 ? ['moe.route_groups=8', `moe.route_group_topk=${limit}`] : [])));
  return { ...w, source: 'run', steps: w.steps.map((s) => ({ ...s, layers: s.layers.map((l) => ({ ...l, ...recorded })) })) };
};

test('a recorded groups-per-token applies only when the run counted it over the simulated groups, and never over the limit', (t) => {
  const groups = (w: Workload) => project(cluster, w).layers[0]!.groups_per_token;
  t.is(groups(limited(2, { groupsPerToken: 1.5, expertGroups: 8 })), 1.5, 'the same 8 groups: the run\'s own mean');
  t.is(groups(limited(2, { groupsPerToken: 1.5, expertGroups: 4 })), 2, 'counted over the run\'s 4 groups: the limit M = 2 instead');
  t.is(groups(limited(1, { groupsPerToken: 1.61, expertGroups: 8 })), 1, 'a limit of 1 bounds a recorded 1.61');
  // the alltoall dispatcher sends every (token, expert) pair, as Megatron-Core's all-to-all dispatcher does, so
  // the limit does not cut its bytes (flex's one copy per node: test/simulate-dispatch.test.ts)
  const free = project(cluster, limited(0)).layers[0]!;
  t.is(project(cluster, limited(2, { groupsPerToken: 1.5, expertGroups: 8 })).layers[0]!.bytes_intra_node, free.bytes_intra_node);
});

test('a run directory\'s groups-per-token carries the groups it was counted over: moe.route_groups, else the run\'s devices', (t) => {
  const counts = Array.from({ length: 4 }, () => [...SKEW]);
  for (const [sets, expertGroups] of [[[], 4], [['moe.route_groups=2'], 2]] as const) {
    const dir = tempDir(t);
    const config = cfg('parallel.devices=4', 'moe.n_experts=8', 'moe.top_k=2', 'moe.route_group_topk=1', ...sets);
    writeFileSync(join(dir, 'config.yaml'), YAML.stringify(config));
    const layers = [0, 1].map(() => ({ group_expert_counts: counts, groups_per_token: 1.61 }));
    writeFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: 1, layers })}\n`);
    t.like(runWorkload(dir).steps[0]!.layers[0]!, { groupsPerToken: 1.61, expertGroups });
  }
});

/** a run directory without training: its config and one logged step's routing (4 groups, 8 experts, both blocks Switch layers) */
function fakeRun(t: { teardown: (f: () => void) => void }): string {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'config.yaml'), YAML.stringify(cfg('parallel.devices=4', 'moe.n_experts=8')));
  const layers = [0, 1].map(() => ({ group_expert_counts: Array.from({ length: 4 }, () => SKEW.map((n) => n / 2)) }));
  writeFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: 1, tokens_per_s: 1000, layers })}\n`);
  return dir;
}

test('the keys a replay may not change are what decides the Switch layers, the tokens per routing group, and the recorded counts\' shape', (t) => {
  const keys = replayFixedKeys(cfg('parallel.devices=4', 'moe.n_experts=8'));
  t.deepEqual(keys.map((k) => k.key).sort(), [
    'data.batch_size', 'data.seq_len', 'model.first_dense_layers', 'model.n_layers', 'model.switch_every', 'moe.n_experts', 'moe.top_k', 'parallel.devices',
  ]);
  t.regex(keys.find((k) => k.key === 'model.first_dense_layers')!.rule, /which blocks are Switch layers/);
  t.regex(keys.find((k) => k.key === 'parallel.devices')!.rule, /tokens per routing group/);
});

test.serial('simulate --run refuses every fixed key with one line naming it and its rule (exit 2), and takes any other', async (t) => {
  const run = fakeRun(t);
  const changed: Record<string, string> = {
    'data.batch_size': '32', 'data.seq_len': '32', 'parallel.devices': '2', 'moe.n_experts': '16', 'moe.top_k': '2',
    'model.n_layers': '4', 'model.switch_every': '2', 'model.first_dense_layers': '1',
  };
  for (const { key, rule } of replayFixedKeys(cfg('parallel.devices=4', 'moe.n_experts=8'))) {
    const r = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--run', run, '--set', `${key}=${changed[key]}`, '--out', tempDir(t));
    t.is(r.status, 2, `${key}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, key);
    t.true(r.stderr.startsWith(`config error: --set ${key} cannot replay a recorded run: it changes ${rule}`), r.stderr);
    t.true(r.stderr.trim().endsWith(`(got ${changed[key]})`), r.stderr);
  }
  // the run's own value is no change; a key outside the rules (the plan) replays
  for (const set of ['model.first_dense_layers=0', 'moe.capacity_factor=2', 'plan.dispatch=padded']) {
    const r = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--run', run, '--set', set, '--out', tempDir(t));
    t.is(r.status, 0, `${set}: ${r.stderr}`);
  }
});
