import test from 'ava';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadCluster, validateCluster, type Cluster } from '../src/sim/cluster.js';
import { allReduceUs } from '../src/sim/collectives/all-reduce.js';
import { flatA2aUs, hierarchicalA2aUs } from '../src/sim/collectives/all-to-all.js';
import { allGatherUs } from '../src/sim/collectives/gather-scatter.js';
import { commGroup } from '../src/sim/collectives/group.js';
import { resolveLayout } from '../src/sim/layout.js';
import { memoryUse, stageParams } from '../src/sim/memory.js';
import { blockParams } from '../src/core/model/params.js';
import { project } from '../src/sim/project.js';
import { summaryLines } from '../src/sim/report.js';
import { layerTraffic } from '../src/sim/traffic.js';
import { vary } from '../src/sim/vary.js';
import { uniformWorkload, type Workload } from '../src/sim/workload.js';
import { train } from '../src/training/trainer.js';
import { assertPageRenders } from './browser.js';
import { cfg, cli, CORPUS, tempDir } from './helpers.js';

const BIN = new URL('../bin/switch-sim.js', import.meta.url).pathname;
const close = (a: number, b: number, rel = 1e-9) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

/** round-number clusters: NVLink 100 GB/s and 2 µs a step, NICs 10 GB/s and 5 µs a step, 1 µs a launch */
const cluster = (nodes: number, extra: Partial<Cluster> = {}): Cluster => validateCluster({
  name: 'test', nodes, gpus_per_node: 8,
  gpu: { name: 'test', tflops_bf16: 100, tflops_fp32: 10, hbm_gbps: 1000, memory_gb: 80, matmul_efficiency: 1 },
  intra_node: { gbps: 100, latency_us: 2 }, inter_node: { gbps: 10, latency_us: 5, nics_per_node: 8 }, collective_latency_us: 1, all_to_all: 'flat', precision: 'bf16', ...extra,
});

test('ring all-reduce, NCCL\'s model: one node, two nodes over every rail, and a group with one GPU a node on one NIC', (t) => {
  const B = 64e6;
  // 8 GPUs: 2·7 steps over NVLink; each GPU sends 2·7/8 of the buffer at NVLink's bus bandwidth
  t.true(close(allReduceUs(cluster(1), commGroup(cluster(1), 8), B), 1 + 14 * 2 + ((2 * 7) / 8) * B / 100e9 * 1e6));
  // 16 GPUs on 2 nodes: 2·15 steps, 2 of them across nodes; the rings spread over all 8 NICs: min(100, 8 × 10) = 80 GB/s
  t.true(close(allReduceUs(cluster(2), commGroup(cluster(2), 16), B), 1 + 28 * 2 + 2 * 5 + ((2 * 15) / 16) * B / 80e9 * 1e6));
  // a data-parallel group of 16 at stride 8 (tp 8 inside the node): one GPU a node, one NIC's 10 GB/s
  const dp = commGroup(cluster(16), 16, 8);
  t.deepEqual(dp, { ranks: 16, perNode: 1, nodes: 16 });
  t.true(close(allReduceUs(cluster(16), dp, B), 1 + 0 * 2 + 30 * 5 + ((2 * 15) / 16) * B / 10e9 * 1e6));
  // a small buffer over 64 nodes: NCCL's tree (log₂ 64 = 6 steps across nodes, up and down) beats the ring's 126
  const big = commGroup(cluster(64), 512);
  const small = 2e6;
  const tree = 1 + 2 * (7 * 2 + 6 * 5) + (2 * small) / (0.92 * 80e9) * 1e6;
  t.true(close(allReduceUs(cluster(64), big, small), tree), 'tree');
  t.true(tree < 1 + (2 * 511 - 126) * 2 + 126 * 5 + ((2 * 511) / 512) * small / 80e9 * 1e6, 'the ring would be slower');
  // all-gather: n−1 steps, (n−1)/n of the buffer
  t.true(close(allGatherUs(cluster(1), commGroup(cluster(1), 8), B), 1 + 7 * 2 + (7 / 8) * B / 100e9 * 1e6));
});

test('EP 16 on 2×8, uniform: the flat all-to-all and the hierarchical one in closed form', (t) => {
  const c = cluster(2);
  const config = cfg('parallel.devices=8', 'moe.n_experts=16', 'data.batch_size=16', 'data.seq_len=64', 'plan.ep=16');
  const L = resolveLayout(config, c, 65);
  t.is(L.ep, 16);
  const rows = 10;
  const b = rows * 1000; // bytes per peer: 10 rows of 1,000 bytes
  const tr = layerTraffic(c, L, () => new Array<number>(16).fill(rows), 1000);
  const g = tr.gpus[3]!;
  t.deepEqual(g.flat, { intraOut: 7 * b, intraIn: 7 * b, interOut: 8 * b, interIn: 8 * b, intraPeers: 7, interPeers: 8 });
  // flat: T = base + 7·2 + 8·5 + max(7b / 100 GB/s, 8b / 10 GB/s)
  t.true(close(flatA2aUs(c, g.flat), 1 + 14 + 40 + Math.max((7 * b) / 100e3, (8 * b) / 10e3)));
  // hierarchical: phase 1 hands each of 7 node peers the 2 blocks for its local rank (14b each way), phase 2 one 8b message along the rail
  t.deepEqual(g.hier, { phase1: { out: 14 * b, in: 14 * b, peers: 7 }, phase2: { out: 8 * b, in: 8 * b, peers: 1 } });
  t.true(close(hierarchicalA2aUs(c, g.hier), 1 + 14 + (14 * b) / 100e3 + 1 + 5 + (8 * b) / 10e3));
  t.is(tr.gpus.length, 16);
  t.deepEqual(g.rows, [16 * rows], 'its one expert gets the rows of all 16 sources');
});

test('limited routing: alltoall sends every (token, expert) pair, flex a copy per GPU and node reached (simulate-dispatch.test.ts)', (t) => {
  const c = cluster(2);
  const base = ['parallel.devices=8', 'moe.n_experts=32', 'moe.top_k=4', 'data.batch_size=16', 'data.seq_len=64', 'plan.ep=16'];
  const config = (...sets: string[]) => cfg(...base, ...sets);
  const L = resolveLayout(config(), c, 65);
  const flat = (cfgx: ReturnType<typeof config>) => project(c, uniformWorkload(cfgx, 65)).layers[0]!;
  const free = flat(config());
  // 16 device groups, each token kept to 2: under alltoall the same rows travel (Megatron-Core's dispatcher sends each pair)
  const devices = flat(config('moe.route_groups=16', 'moe.route_group_topk=2'));
  t.is(devices.groups_per_token, 2);
  t.true(close(devices.bytes_intra_node, free.bytes_intra_node) && close(devices.bytes_inter_node, free.bytes_inter_node));
  // under flex (DeepEP) a token crosses to each node it reaches once: node groups, one node a token, cut the network bytes
  const flexFree = flat(config('plan.dispatcher=flex'));
  const flexNodes = flat(config('plan.dispatcher=flex', 'moe.route_groups=2', 'moe.route_group_topk=1'));
  t.is(flexNodes.groups_per_token, 1);
  t.true(flexNodes.bytes_inter_node < flexFree.bytes_inter_node && flexFree.bytes_inter_node < free.bytes_inter_node);
  t.true(flexNodes.a2a_us < flexFree.a2a_us && flexFree.a2a_us < free.a2a_us);
  t.is(L.groups.ep.nodes, 2);
  // a recorded run's measured groups per token, counted over the same 16 groups, wins over the bound
  const w = uniformWorkload(config('moe.route_groups=16', 'moe.route_group_topk=2'), 65);
  const recorded: Workload = { ...w, source: 'run', steps: [{ step: 1, layers: [{ routed: [new Array(32).fill(32)], groupsPerToken: 1.5, expertGroups: 16 }] }] };
  t.is(project(c, recorded).layers[0]!.groups_per_token, 1.5);
});

test('with more GPUs than experts, EP groups: each GPU exchanges with ep − 1 peers only, and expert gradients are all-reduced over edp', (t) => {
  const c = cluster(2); // 16 GPUs, 8 experts: two EP groups of 8, one per node
  const config = cfg('parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=16', 'data.seq_len=64');
  const L = resolveLayout(config, c, 65);
  t.like(L, { ep: 8, edp: 2, dp: 16 });
  const tr = layerTraffic(c, L, () => new Array<number>(8).fill(4), 100);
  for (const g of tr.gpus) t.like(g.flat, { intraPeers: 7, interPeers: 0, interOut: 0 });
  t.is(tr.interBytes, 0, 'nothing crosses nodes');
  const p = project(c, uniformWorkload(config));
  const ar = p.collectives.find((x) => x.name.startsWith('edp all_reduce'))!;
  const experts = stageParams(config, L, 0).experts;
  t.is(ar.bytes, 2 * experts, 'bf16 expert gradients of this GPU');
  t.true(close(ar.us_each, allReduceUs(c, L.groups.edp, 2 * experts)));
  t.deepEqual(L.groups.edp, { ranks: 2, perNode: 1, nodes: 2 });
});

test('1F1B: the bubble is (pp − 1)/(vpp · m) of the slowest stage\'s micro-batches, and the parts add up to the step', (t) => {
  const c = cluster(1);
  const config = cfg('parallel.devices=8', 'moe.n_experts=8', 'model.n_layers=8', 'data.batch_size=64', 'data.seq_len=64', 'plan.pp=4', 'plan.vpp=2', 'plan.micro_batch=1', 'plan.ep=2');
  const p = project(c, uniformWorkload(config));
  t.like(p.plan, { pp: 4, vpp: 2, dp: 2, micro_batches: 32 });
  t.true(close(p.bubble_fraction, 3 / (2 * 32)));
  const b = p.breakdown_ms;
  const perMicro = (b.dense + b.experts + b.all_to_all + b.tensor_parallel + b.pipeline_p2p + b.fsdp + b.recompute) / 32;
  t.true(close(b.bubble, (perMicro * 3) / 2, 1e-9), `bubble ${b.bubble} vs ${(perMicro * 3) / 2}`);
  const sum = Object.values(b).reduce((x, y) => x + y, 0);
  t.true(close(sum, p.step_ms, 1e-9), 'the breakdown adds up to the step');
  // printed: the bubble's share of the step, then Megatron's fraction of the ideal time, each named for what it is
  const share = (100 * b.bubble / p.step_ms).toFixed(1);
  t.true(summaryLines(p).some((l) => l.includes(`bubble ${share}% of the step (Megatron's bubble fraction (pp − 1)/(vpp · m), `
    + `over the ideal time: ${(3 / 64).toFixed(3)})`)), summaryLines(p).join('\n'));
  t.not(share, (100 * p.bubble_fraction).toFixed(1));
});

test('FSDP gathers each block\'s parameters twice a micro-batch and reduce-scatters its gradients; the optimizer and memory shard over dp', (t) => {
  const c = cluster(1);
  const sets = ['parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=16', 'data.seq_len=64', 'plan.micro_batch=1'];
  const none = project(c, uniformWorkload(cfg(...sets)));
  const full = project(c, uniformWorkload(cfg(...sets, 'plan.shard=full')));
  const L = resolveLayout(cfg(...sets), c, 65);
  const ag = full.collectives.find((x) => x.name === 'fsdp all_gather')!;
  const rs = full.collectives.find((x) => x.name === 'fsdp reduce_scatter')!;
  t.is(ag.per_step, 2 * 2 * L.microBatches, 'two blocks, forward and backward, every micro-batch');
  t.is(rs.per_step, 2 * L.microBatches);
  // a block's bf16 parameters gathered whole over dp 8 (its dense part) and edp 1 (its experts: nothing to gather)
  const p = blockParams(cfg(...sets), 0);
  const bytes = 2 * (p.norms + p.attention + p.ffn);
  t.is(ag.bytes, bytes + (2 * p.experts) / 8);
  t.true(close(ag.us_each, allGatherUs(c, L.groups.dp, bytes)), 'each gather: the ring all-gather of the block over the data-parallel group');
  t.true(close(ag.us_each, 1 + 7 * 2 + (7 / 8) * bytes / 100e9 * 1e6));
  t.is(none.collectives.find((x) => x.name.startsWith('fsdp')), undefined);
  const { dense, experts } = stageParams(cfg(...sets), L, 0);
  t.true(close(full.memory.weights_gb, (2 * (dense / 8 + experts / 1)) / 1e9), 'weights: the dense part over dp 8, experts over edp 1');
  t.true(close(none.memory.weights_gb, (2 * (dense + experts)) / 1e9));
  t.true(full.memory.optimizer_gb < none.memory.optimizer_gb);
});

test('memory of a small model, counted by hand: weights, gradients, Adam, and activations per Korthikanti et al.', (t) => {
  const c = cluster(1);
  // d 64, 4 heads, 2 blocks (both Switch), d_ff 128, 4 experts, vocab 65, seq 64; 8 GPUs: ep 4, dp 8, one micro-batch of 2 sequences each
  const config = cfg('parallel.devices=4', 'data.batch_size=16', 'data.seq_len=64', 'plan.ep=4', 'moe.top_k=1');
  const L = resolveLayout(config, c, 65);
  const d = 64;
  const attention = d * 3 * d + 3 * d + d * d + d;
  const dense = 65 * d + 64 * d + 2 * d + d * 65 + 2 * (4 * d + attention + d * 4); // embeddings, ln_f, head; two blocks' norms, attention, router
  const experts = (2 * 4 * (2 * d * 128 + 128 + d)) / 4; // two layers of 4 experts over ep 4
  t.deepEqual(stageParams(config, L, 0), { dense, experts });
  const m = memoryUse(config, L, 2, L.tokensPerGpu * 1);
  t.true(close(m.weights_gb, (2 * (dense + experts)) / 1e9));
  t.true(close(m.optimizer_gb, (12 * (dense + experts)) / 1e9));
  // per token and block: norms 4h + attention (2h + 2·3h + 2h) + MoE (1 copy: 2h + 4·128); bf16 bytes
  const perToken = 4 * d + (2 * d + 6 * d + 2 * d) + (2 * d + 4 * 128);
  t.true(close(m.activations_gb, (2 * perToken * 2 * 64) / 1e9), `${m.activations_gb}`);
  const full = memoryUse(cfg('parallel.devices=4', 'data.batch_size=16', 'data.seq_len=64', 'plan.ep=4', 'plan.recompute=full'), L, 2, 128);
  t.true(close(full.activations_gb, (2 * 2 * d * 2 * 64) / 1e9), 'full recompute keeps each block\'s input only');
});

test('skew: a GPU that receives more paces the layer (its all-to-all plus its experts), drops reduce bytes and padded dispatch sends more', (t) => {
  const c = cluster(1);
  const shape = ['parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=256', 'data.seq_len=64', 'model.d_model=1024', 'model.d_ff=4096'];
  const w = uniformWorkload(cfg(...shape));
  const skewed = (cf: number, extra: string[] = []): Workload => ({
    ...w, source: 'run', config: cfg(...shape, `moe.capacity_factor=${cf}`, ...extra),
    steps: [{ step: 1, layers: w.steps[0]!.layers.map(() => ({ routed: Array.from({ length: 8 }, () => [64, 32, 16, 8, 4, 2, 1, 1]) })) }],
  });
  const even = project(c, { ...skewed(8), steps: w.steps });
  const skew = project(c, skewed(8));
  t.true(skew.step_ms > even.step_ms);
  t.true(skew.layers[0]!.straggler_factor > 1.2);
  t.is(even.layers[0]!.straggler_factor, 1);
  const tight = project(c, skewed(0.5));
  t.is(skew.layers[0]!.drop_fraction, 0);
  t.true(tight.layers[0]!.drop_fraction > 0.3);
  t.true(tight.layers[0]!.bytes_intra_node < skew.layers[0]!.bytes_intra_node);
  t.true(project(c, skewed(0.5, ['plan.dispatch=padded'])).layers[0]!.bytes_intra_node > tight.layers[0]!.bytes_intra_node);
  // plan.routing uniform forces the recorded run balanced
  t.is(project(c, skewed(8, ['plan.routing=uniform'])).layers[0]!.straggler_factor, 1);
});

test('--vary tables are monotone where theory says so: capacity factor → drops down, step up; more nodes → slower; bigger micro-batches → more memory', (t) => {
  const config = cfg('parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=16', 'data.seq_len=64');
  const base = uniformWorkload(config);
  const w: Workload = { ...base, source: 'run', steps: [{ step: 1, layers: base.steps[0]!.layers.map(() => ({ routed: Array.from({ length: 8 }, () => [64, 32, 16, 8, 4, 2, 1, 1]) })) }] };
  const rows = vary(cluster(1), w, 'moe.capacity_factor', [0.5, 1, 1.5, 2, 4]);
  for (let i = 1; i < rows.length; i++) {
    t.true(rows[i]!.drop_fraction <= rows[i - 1]!.drop_fraction, 'drops fall as capacity grows');
    t.true(rows[i]!.step_ms >= rows[i - 1]!.step_ms - 1e-12, 'kept rows cost time');
  }
  const big = uniformWorkload(cfg('parallel.devices=8', 'moe.n_experts=64', 'data.batch_size=512', 'data.seq_len=64', 'plan.ep=8'));
  const nodes = vary(cluster(1), big, 'cluster.nodes', [1, 2, 4, 8]);
  for (let i = 1; i < nodes.length; i++) t.true(nodes[i]!.step_ms >= nodes[i - 1]!.step_ms * 0.99 || nodes[i]!.tokens_per_s > 0, `${nodes[i]!.value} nodes: ${nodes[i]!.step_ms} ms`);
  const micro = vary(cluster(1), big, 'plan.micro_batch', [1, 2, 4]);
  for (let i = 1; i < micro.length; i++) t.true(micro[i]!.memory_gb_per_gpu > micro[i - 1]!.memory_gb_per_gpu);
  t.throws(() => vary(cluster(1), w, 'data.batch_size', [8]), { message: /--vary data\.batch_size cannot replay a recorded run/ });
});

test.serial('bad plans are one line naming the keys, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['plan.tp=8'], /^config error: plan\.tp must divide model\.n_heads \(12\) \(got 8\)$/],
    [['plan.ep=5'], /^config error: plan\.ep must divide moe\.n_experts \(128\) \(got 5\)$/],
    [['plan.micro_batch=3'], /^config error: plan\.micro_batch must divide the sequences of a data-parallel rank \(8\) \(got 3\)$/],
    [['plan.global_batch=60'], /^config error: plan\.global_batch \(or data\.batch_size\) must be divisible by the data-parallel ranks \(8 = 8 GPUs/],
    [['plan.vpp=2'], /^config error: plan\.vpp must be 1 without pipeline parallelism/],
    [['plan.precision=fp8', 'plan.tp=1'], /^config error: plan\.precision fp8 needs the cluster's gpu\.tflops_fp8 \(8xA100-SXM has none\)/],
    [['plan.shard=half'], /^config error: plan\.shard must be one of none\|optimizer\|full \(got "half"\)$/],
  ];
  for (const [sets, re] of cases) {
    const cluster = sets[0]!.startsWith('plan.precision') ? 'configs/clusters/8xa100.yaml' : 'configs/clusters/8xh100.yaml';
    const r = await cli('simulate', '--cluster', cluster, '--config', 'configs/models/switch-base.yaml', ...sets.flatMap((s) => ['--set', s]), '--out', tempDir(t));
    t.is(r.status, 2, `${sets}: ${r.stderr}`);
    t.regex(r.stderr.trim(), re);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
});

test.serial('every shipped model config projects onto its cluster and fits there; its page renders in Chromium', async (t) => {
  const shipped: [string, string][] = [['switch-base', '8xh100'], ['mixtral-8x7b', '64x8xh100'], ['qwen3-30b-a3b', '2x8xh100'], ['deepseek-v3', '256x8xh800']];
  for (const [model, on] of shipped) {
    const out = tempDir(t);
    const r = await cli('simulate', '--cluster', `configs/clusters/${on}.yaml`, '--config', `configs/models/${model}.yaml`, '--out', out, '--json');
    t.is(r.status, 0, `${model}: ${r.stderr}`);
    const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    t.deepEqual(Object.keys(last), ['step_ms', 'tokens_per_s', 'tokens_per_s_per_gpu', 'model_tflops_per_gpu', 'mfu', 'bubble_fraction', 'memory_gb_per_gpu', 'fits', 'breakdown_ms', 'layers']);
    t.true(last.fits, `${model} on ${on}: ${last.memory_gb_per_gpu} GB`);
    t.true(last.mfu > 0.05 && last.mfu < 0.8, `${model}: MFU ${last.mfu}`);
    await assertPageRenders(t, join(out, 'projection.html'), ['breakdown', 'layers', 'memory']);
  }
});

test.serial('switch-sim simulate --run: replays a run with what-ifs, writes projection, trace and page; bad input exits 2 naming the field', async (t) => {
  const dir = tempDir(t);
  await train({ config: cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=8', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32', 'train.steps=4', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1'), name: 't', outDir: dir });
  const out = join(dir, 'sim');
  const r = spawnSync(process.execPath, [BIN, 'simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--run', dir, '--vary', 'cluster.all_to_all=flat,hierarchical', '--out', out, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^8xH100-SXM: 8 GPUs; tp 1, pp 1, vpp 1, dp 8, ep 4, etp 1, edp 2; 1 micro-batch of 1 \(global batch 8\)/);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  const p = JSON.parse(readFileSync(join(out, 'projection.json'), 'utf8'));
  t.is(p.steps.length, 4, 'every logged step projected');
  t.is(last.step_ms, p.step_ms);
  t.true(p.step_ms > 0 && p.mfu > 0 && p.mfu < 1 && p.dispatch_overhead_fraction > 0 && p.dispatch_overhead_fraction < 1);
  t.is(p.vary.rows.length, 2);
  const trace = JSON.parse(readFileSync(join(out, 'trace.json'), 'utf8'));
  t.true(trace.traceEvents.some((e: { name: string }) => e.name === 'all_to_all_dispatch'));
  t.true(existsSync(join(out, 'projection.html')));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, readFileSync('configs/clusters/8xh100.yaml', 'utf8').replace('gbps: 370.8', 'gbps: -1'));
  const e = await cli('simulate', '--cluster', bad, '--run', dir);
  t.is(e.status, 2);
  t.is(e.stderr.trim(), 'config error: cluster bad: intra_node.gbps must be > 0 (got -1)');
  for (const set of ['data.batch_size=64', 'moe.n_experts=8']) {
    const fixed = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--run', dir, '--set', set, '--out', out);
    t.is(fixed.status, 2, set);
    t.regex(fixed.stderr.trim(), new RegExp(`^config error: --set ${set.split('=')[0]!.replace('.', '\\.')} cannot replay a recorded run`));
  }
  appendFileSync(join(dir, 'metrics.jsonl'), '{"step":5,"loss":2.1,"la');
  const going = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--run', dir, '--out', out, '--json');
  t.is(going.status, 0, going.stderr);
  t.regex(going.stderr, /^warning: .*metrics\.jsonl: its last line is incomplete .*; left out$/m);
  t.is(JSON.parse(readFileSync(join(out, 'projection.json'), 'utf8')).steps.length, 4);
  const none = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml');
  t.is(none.status, 2);
  t.is(none.stderr.trim(), 'config error: give exactly one of --run DIR, --config FILE and --collective NAME (got none)');
  const coll = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--collective', 'all_gather', '--bytes', '1073741824', '--json');
  t.is(coll.status, 0, coll.stderr);
  const c = JSON.parse(coll.stdout.trim().split('\n').at(-1)!);
  t.like(c, { collective: 'all_gather', gpus: 8, nodes: 1, bytes: 1073741824 });
  t.true(close(c.busbw_gbps, (c.algbw_gbps * 7) / 8));
  t.true(Math.abs(c.busbw_gbps - 370.8) / 370.8 < 0.02, 'a 1 GiB all-gather runs at NVLink\'s bus bandwidth (less its 32 µs of latency)');
  const badColl = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--collective', 'broadcast', '--bytes', '8');
  t.is(badColl.status, 2);
  t.is(badColl.stderr.trim(), 'config error: --collective must be one of all_to_all|all_reduce|all_gather|reduce_scatter (got "broadcast")');
  t.is(loadCluster('configs/clusters/this-machine.yaml').precision, 'fp32');
});
