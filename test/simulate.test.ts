import test from 'ava';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { validateCluster, type Cluster } from '../src/sim/cluster.js';
import { allReduceUs, flatA2aUs, hierarchicalA2aUs } from '../src/sim/collective.js';
import { project } from '../src/sim/project.js';
import { layerTraffic } from '../src/sim/traffic.js';
import { vary } from '../src/sim/vary.js';
import { uniformWorkload, type Workload } from '../src/sim/workload.js';
import { train } from '../src/train/trainer.js';
import { assertPageRenders } from './browser.js';
import { cfg, cli, CORPUS, tempDir } from './helpers.js';

const BIN = new URL('../bin/switch-sim.js', import.meta.url).pathname;

/** A cluster with round numbers: 100 GB/s NVLink-class and 10 GB/s NICs, 2 and 5 µs per message, full efficiency. */
const cluster = (nodes: number, extra: Partial<Cluster> = {}): Cluster => validateCluster({
  name: 'test', nodes, gpus_per_node: 8,
  gpu: { name: 'test', tflops_bf16: 100, tflops_fp32: 10, hbm_gbps: 1000, matmul_efficiency: [[1, 1]] },
  intra_node: { gbps: 100, latency_us: 2 }, inter_node: { gbps: 10, latency_us: 5 }, all_to_all: 'flat', message_efficiency: [[1, 1]], precision: 'bf16', ...extra,
});

test('8 GPUs, uniform routing: every GPU sends r rows to each expert; one all-to-all takes exactly 7α + 7·r·row_bytes/β', (t) => {
  const c = cluster(1);
  const r = 100;
  const rowBytes = 512 * 2; // d_model 512 in bf16
  const kept = Array.from({ length: 8 }, () => new Array<number>(8).fill(r)); // 8 groups × 8 experts
  const tr = layerTraffic(c, kept, rowBytes);
  for (const l of tr.flat) t.deepEqual(l, { intraOut: 7 * r * rowBytes, intraIn: 7 * r * rowBytes, interOut: 0, interIn: 0 });
  t.deepEqual(tr.rows, new Array(8).fill(8 * r));
  const us = 7 * 2 + (7 * r * rowBytes) / (100e9) * 1e6; // 14 µs + 7.168 µs
  t.true(Math.abs(flatA2aUs(c, tr.flat[0]!) - us) < 1e-9, `${flatA2aUs(c, tr.flat[0]!)} vs ${us}`);
  t.true(Math.abs(us - 21.168) < 1e-9);
  // ring all-reduce of 1 GB over 8 GPUs: 14 latencies + 2·7/8 GB at 100 GB/s
  t.true(Math.abs(allReduceUs(c, 1e9) - (14 * 2 + (2 * 7 / 8) * 1e9 / 100e9 * 1e6)) < 1e-6);
});

test('skewed routing costs more than uniform with the same total, and its straggler factor says so', (t) => {
  const c = cluster(1);
  const config = cfg('parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=64', 'data.seq_len=256', 'moe.drop_tokens=false');
  const uniform = uniformWorkload(config);
  const S = 2048; // tokens per group: enough bytes that bandwidth, not latency, sets the all-to-all's pace
  const skewed: Workload = { ...uniform, steps: [{ step: 1, layers: uniform.steps[0]!.layers.map(() => ({ routed: Array.from({ length: 8 }, () => [S / 2, S / 2 / 7, S / 2 / 7, S / 2 / 7, S / 2 / 7, S / 2 / 7, S / 2 / 7, S / 2 / 7]) })) }] };
  const total = (w: Workload) => w.steps[0]!.layers[0]!.routed.flat().reduce((a, b) => a + b, 0);
  t.true(Math.abs(total(skewed) - total(uniform)) < 1e-9, 'the same token-choices in all');
  const pu = project(c, uniform);
  const ps = project(c, skewed);
  t.true(ps.layers[0]!.comm_us > pu.layers[0]!.comm_us, `all-to-all ${ps.layers[0]!.comm_us} vs ${pu.layers[0]!.comm_us}`);
  t.true(ps.layers[0]!.compute_us > pu.layers[0]!.compute_us, 'the busiest expert sets the pace');
  t.true(ps.step_ms > pu.step_ms);
  t.true(Math.abs(pu.layers[0]!.straggler_factor - 1) < 1e-9);
  t.true(ps.layers[0]!.straggler_factor > 1.2, `straggler factor ${ps.layers[0]!.straggler_factor}`); // GPU 0 gets half of every group's rows
});

test('hierarchical beats flat across nodes for small messages, and not for large ones', (t) => {
  const flat = cluster(4);
  const hier = cluster(4, { all_to_all: 'hierarchical' });
  const times = (rows: number) => {
    const tr = layerTraffic(flat, Array.from({ length: 32 }, () => new Array<number>(32).fill(rows)), 1024);
    return {
      flat: Math.max(...tr.flat.map((l) => flatA2aUs(flat, l))),
      hier: Math.max(...tr.hier.map((x) => hierarchicalA2aUs(hier, x.phase1, x.phase2))),
    };
  };
  // one row per peer: flat pays 7 NVLink and 24 NIC latencies, hierarchical 7 and 3
  const small = times(1);
  t.true(small.hier < small.flat, `small: hierarchical ${small.hier} µs vs flat ${small.flat} µs`);
  // 10,000 rows per peer: the NIC bytes are the same, and hierarchical moves them over NVLink first
  const large = times(10_000);
  t.true(large.hier > large.flat, `large: hierarchical ${large.hier} µs vs flat ${large.flat} µs`);
  // closed form, small: flat = max(7·2 + 7·1024 B / 100 GB/s, 24·5 + 24·1024 B / 10 GB/s) µs
  t.true(Math.abs(small.flat - Math.max(14 + 7 * 1024 / 100e3, 120 + 24 * 1024 / 10e3)) < 1e-9);
});

test('drops reduce bytes: a capacity factor under 1 drops token-choices and moves fewer rows', (t) => {
  const c = cluster(1);
  const w = uniformWorkload(cfg('parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=16', 'data.seq_len=64'));
  const skew = (cf: number): Workload => {
    const config = cfg('parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=16', 'data.seq_len=64', `moe.capacity_factor=${cf}`);
    return { ...w, config, steps: [{ step: 1, layers: w.steps[0]!.layers.map(() => ({ routed: Array.from({ length: 8 }, () => [64, 32, 16, 8, 4, 2, 1, 1]) })) }] };
  };
  const loose = project(c, skew(8));
  const tight = project(c, skew(0.5));
  t.is(loose.layers[0]!.drop_fraction, 0);
  t.true(tight.layers[0]!.drop_fraction > 0.3);
  t.true(tight.layers[0]!.bytes_intra_node < loose.layers[0]!.bytes_intra_node);
  // padded dispatch sends E·C rows whatever was routed
  t.true(project(c, skew(0.5), 'padded').layers[0]!.bytes_intra_node > tight.layers[0]!.bytes_intra_node);
});

test('--vary tables are monotone where theory says so: capacity factor → drops down, step time up; more nodes → slower all-to-all', (t) => {
  const config = cfg('parallel.devices=8', 'moe.n_experts=8', 'data.batch_size=16', 'data.seq_len=64');
  const base = uniformWorkload(config);
  const w: Workload = { ...base, source: 'run', steps: [{ step: 1, layers: base.steps[0]!.layers.map(() => ({ routed: Array.from({ length: 8 }, () => [64, 32, 16, 8, 4, 2, 1, 1]) })) }] };
  const rows = vary(cluster(1), w, 'moe.capacity_factor', [0.5, 1, 1.5, 2, 4], 'recorded');
  for (let i = 1; i < rows.length; i++) {
    t.true(rows[i]!.drop_fraction <= rows[i - 1]!.drop_fraction, 'drops fall as capacity grows');
    t.true(rows[i]!.step_ms >= rows[i - 1]!.step_ms - 1e-12, 'kept rows cost time');
  }
  const nodes = vary(cluster(1), uniformWorkload(cfg('parallel.devices=8', 'moe.n_experts=64', 'data.batch_size=16', 'data.seq_len=64')), 'cluster.nodes', [1, 2, 4, 8], 'recorded');
  for (let i = 1; i < nodes.length; i++) t.true(nodes[i]!.step_ms >= nodes[i - 1]!.step_ms, `${nodes[i]!.value} nodes: ${nodes[i]!.step_ms} ms`);
  t.throws(() => vary(cluster(1), w, 'data.batch_size', [8], 'recorded'), { message: /--vary data\.batch_size cannot replay a recorded run/ });
});

test.serial('switch-sim simulate --run: projection.json, trace.json and a page that renders; bad cluster files exit 2 naming the field', async (t) => {
  const dir = tempDir(t);
  await train({ config: cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32', 'train.steps=4', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1'), name: 't', outDir: dir });
  const out = join(dir, 'sim');
  const r = spawnSync(process.execPath, [BIN, 'simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--run', dir, '--vary', 'cluster.all_to_all=flat,hierarchical', '--out', out, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^8xH100-SXM: 8 GPUs, all-to-all flat, dispatch recorded \(routing as recorded\)/);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  const p = JSON.parse(readFileSync(join(out, 'projection.json'), 'utf8'));
  t.is(p.steps.length, 4, 'every logged step projected');
  t.is(last.step_ms, p.step_ms);
  t.true(p.step_ms > 0 && p.mfu > 0 && p.mfu < 1 && p.dispatch_overhead_fraction > 0 && p.dispatch_overhead_fraction < 1);
  const b = p.breakdown_ms;
  t.true(Math.abs(b.dense + b.experts + b.all_to_all + b.allreduce + b.optimizer + b.other - p.step_ms) < 1e-9, 'the parts add up to the step');
  t.is(p.vary.rows.length, 2);
  const trace = JSON.parse(readFileSync(join(out, 'trace.json'), 'utf8'));
  t.true(trace.traceEvents.some((e: { name: string }) => e.name === 'all_to_all_dispatch'));
  t.true(existsSync(join(out, 'projection.html')));
  await assertPageRenders(t, join(out, 'projection.html'), ['breakdown', 'layers']);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, readFileSync('configs/clusters/8xh100.yaml', 'utf8').replace('gbps: 370.8', 'gbps: -1'));
  const e = await cli('simulate', '--cluster', bad, '--run', dir);
  t.is(e.status, 2);
  t.is(e.stderr.trim(), 'config error: cluster bad: intra_node.gbps must be > 0 (got -1)');
  // a run's replay keeps its routing: --set may not change what routing depends on
  for (const set of ['data.batch_size=64', 'moe.n_experts=8']) {
    const fixed = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--run', dir, '--set', set, '--out', out);
    t.is(fixed.status, 2, set);
    t.regex(fixed.stderr.trim(), new RegExp(`^config error: --set ${set.split('=')[0]!.replace('.', '\\.')} cannot replay a recorded run`));
  }
  // a run still going (or one that crashed) has a half-written last line: left out, with a warning
  appendFileSync(join(dir, 'metrics.jsonl'), '{"step":5,"loss":2.1,"la');
  const going = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml', '--run', dir, '--out', out, '--json');
  t.is(going.status, 0, going.stderr);
  t.regex(going.stderr, /^warning: .*metrics\.jsonl: its last line is incomplete .*; left out$/m);
  t.is(JSON.parse(readFileSync(join(out, 'projection.json'), 'utf8')).steps.length, 4);
  const none = await cli('simulate', '--cluster', 'configs/clusters/8xh100.yaml');
  t.is(none.status, 2);
  t.is(none.stderr.trim(), 'config error: give exactly one of --run DIR and --config FILE (got neither)');
});
