import test from 'ava';
import { validateCluster, type Cluster } from '../src/sim/cluster.js';
import { flatA2aUs } from '../src/sim/collectives/all-to-all.js';
import { allGatherUs } from '../src/sim/collectives/gather-scatter.js';
import { dispatchValueBytes, moeExchange } from '../src/sim/dispatch.js';
import { fanout, missChance, tokenReach } from '../src/sim/fanout.js';
import { resolveLayout } from '../src/sim/layout.js';
import { project } from '../src/sim/project.js';
import { layerTraffic } from '../src/sim/traffic.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { cfg } from './helpers.js';

// The dispatchers (plan.dispatcher) and the FP8 dispatch (plan.dispatch_fwd_dtype) in closed form, on 2 nodes × 8
// GPUs (NVLink 100 GB/s and 2 µs a step, one 10 GB/s NIC a GPU and 5 µs a step, 1 µs a launch): EP 16 over both
// nodes, 32 experts (2 a GPU), top-4, one sequence of 64 tokens a GPU, so each GPU routes 16 rows to each GPU.
const close = (a: number, b: number, rel = 1e-9) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
const cluster: Cluster = validateCluster({
  name: 'test', nodes: 2, gpus_per_node: 8,
  gpu: { name: 'test', tflops_bf16: 100, tflops_fp32: 10, hbm_gbps: 1000, memory_gb: 80, matmul_efficiency: 1 },
  intra_node: { gbps: 100, latency_us: 2 }, inter_node: { gbps: 10, latency_us: 5, nics_per_node: 8 }, collective_latency_us: 1,
  all_to_all: 'flat', precision: 'bf16',
});
const base = ['parallel.devices=8', 'moe.n_experts=32', 'moe.top_k=4', 'data.batch_size=16', 'data.seq_len=64', 'plan.ep=16', 'moe.drop_tokens=false'];
const config = (...sets: string[]) => cfg(...base, ...sets);
const L = resolveLayout(config(), cluster, 65);
const rows = () => new Array<number>(32).fill(8); // 64 tokens × 4 choices over 32 experts

test('how many GPUs and nodes a token reaches: the hypergeometric miss chance, bounded by node- or device-limited routing', (t) => {
  t.true(close(missChance(32, 2, 4), (30 * 29 * 28 * 27) / (32 * 31 * 30 * 29)));
  t.true(close(missChance(16, 2, 1.5), 14 / 16 + 0.5 * ((14 * 13) / (16 * 15) - 14 / 16)), 'a fractional draw interpolates');
  // no limit: 16 GPUs of 2 experts, 2 nodes of 16
  const free = tokenReach(config(), L, undefined);
  t.true(close(free.gpus, 16 * (1 - (28 * 27) / (32 * 31))) && close(free.nodes, 2 * (1 - (16 * 15 * 14 * 13) / (32 * 31 * 30 * 29))));
  // node groups (2 groups = the EP group's 2 nodes), each token in 1: its 4 choices among that node's 16 experts
  const node = tokenReach(config('moe.route_groups=2', 'moe.route_group_topk=1'), L, undefined);
  t.like(node, { level: 'node', nodes: 1 });
  t.true(close(node.gpus, 8 * (1 - (14 * 13 * 12 * 11) / (16 * 15 * 14 * 13))), `${node.gpus}`); // 3.6
  // device groups (16 = ep), each token on 2 GPUs: which fall on 1 or 2 nodes
  const device = tokenReach(config('moe.route_groups=16', 'moe.route_group_topk=2'), L, undefined);
  t.like(device, { level: 'device', gpus: 2 });
  t.true(close(device.nodes, 2 * (1 - (8 * 7) / (16 * 15))));
});

test('alltoall sends a row per (token, expert) pair: limited routing changes no byte; flex sends one copy per node and GPU', (t) => {
  const limited = ['moe.route_groups=2', 'moe.route_group_topk=1'];
  t.like(fanout(config(...limited), L, undefined), { dispatcher: 'alltoall', intra: 1, inter: 1, groupsPerToken: 1 });
  const flex = fanout(config(...limited, 'plan.dispatcher=flex'), L, undefined);
  t.like(flex, { dispatcher: 'flex', level: 'node', inter: 1 / 4 });
  t.true(close(flex.intra, 3.6 / 4));
  const a2a = layerTraffic(cluster, L, rows, 1000, fanout(config(...limited), L, undefined)).gpus[3]!;
  t.deepEqual(a2a.flat, { intraOut: 7 * 16000, intraIn: 7 * 16000, interOut: 8 * 16000, interIn: 8 * 16000, intraPeers: 7, interPeers: 8 });
  // flex, GPU 3: NVLink to its 7 node peers (16 rows each × 0.9) and the forwarding of its rail peer's (GPU 11's) rows
  // to them (the same again); over its NIC one copy of each token for the other node (128 rows × 1/4), to GPU 11 only
  const g = layerTraffic(cluster, L, rows, 1000, flex).gpus[3]!;
  t.true(close(g.flat.intraOut, 2 * 7 * 16 * 0.9 * 1000) && close(g.flat.intraIn, 2 * 7 * 16 * 0.9 * 1000));
  t.true(close(g.flat.interOut, 128 * 0.25 * 1000) && close(g.flat.interIn, 128 * 0.25 * 1000));
  t.like(g.flat, { intraPeers: 7, interPeers: 1 });
  t.deepEqual(g.rows, [16 * 8, 16 * 8], 'its experts compute a row per choice, whatever the dispatcher');
  // one exchange: a launch, 7 NVLink steps and 1 network step, then the slower part: 32 kB over the NIC, 3.2 µs
  t.true(close(flatA2aUs(cluster, g.flat), 1 + 7 * 2 + 5 + 32000 / 10e3), 'flex: 23.2 µs');
  t.true(close(flatA2aUs(cluster, a2a.flat), 1 + 7 * 2 + 8 * 5 + 128000 / 10e3), 'alltoall: 67.8 µs');
});

test('allgather: every token to every EP peer, an all-gather of the group\'s tokens (the combine its reduce-scatter)', (t) => {
  const c = config('plan.dispatcher=allgather');
  const g = layerTraffic(cluster, L, rows, 1000, fanout(c, L, undefined)).gpus[3]!;
  t.like(g.flat, { intraOut: 7 * 64 * 1000, interOut: 8 * 64 * 1000, intraPeers: 7, interPeers: 8 });
  const x = moeExchange(cluster, c, L, g, 2);
  t.true(close(x.one_us, allGatherUs(cluster, L.groups.ep, 16 * 64 * 64 * 2)), 'the 16 GPUs\' 64 tokens of d 64 in bf16');
  t.true(close(x.total_us, 4 * x.one_us));
});

test('an mxfp8 forward dispatch: 1 + 1/32 bytes a value (OCP MX: a one-byte scale per 32); the other three exchanges bf16', (t) => {
  t.is(dispatchValueBytes(config('plan.dispatcher=flex', 'plan.dispatch_fwd_dtype=mxfp8'), 2), 1.03125);
  t.is(dispatchValueBytes(config(), 2), 2);
  const c = config('plan.dispatcher=flex', 'plan.dispatch_fwd_dtype=mxfp8', 'moe.route_groups=2', 'moe.route_group_topk=1');
  const g = layerTraffic(cluster, L, rows, 128, fanout(c, L, undefined)).gpus[3]!;
  const x = moeExchange(cluster, c, L, g, 2);
  const fp8 = 1 + 14 + 5 + Math.max((2 * 7 * 16 * 0.9 * 128 * 1.03125) / 2 / 100e3, (32 * 128 * 1.03125) / 2 / 10e3);
  t.true(close(x.one_us, 1 + 14 + 5 + Math.max((2 * 7 * 16 * 0.9 * 128) / 100e3, (32 * 128) / 10e3)));
  t.true(close(x.total_us, fp8 + 3 * x.one_us));
  t.is(moeExchange(cluster, config('plan.dispatcher=flex', 'plan.dispatch_fwd_dtype=mxfp8', 'plan.recompute=full'), L, g, 2).exchanges, 6);
});

test('in a projection: node-limited routing makes flex cheaper than alltoall; flex without the limit sends more', (t) => {
  const a2a = (...sets: string[]) => project(cluster, uniformWorkload(config(...sets))).layers[0]!.a2a_us;
  const limited = ['moe.route_groups=2', 'moe.route_group_topk=1'];
  t.true(a2a(...limited, 'plan.dispatcher=flex') < a2a(...limited));
  t.true(a2a(...limited, 'plan.dispatcher=flex') < a2a('plan.dispatcher=flex'));
  t.is(a2a(...limited), a2a(), 'alltoall: the limit moves no byte under uniform routing');
});
