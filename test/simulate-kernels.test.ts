import test from 'ava';
import { validateCluster, type Cluster } from '../src/sim/cluster.js';
import { allGatherUs, reduceScatterUs } from '../src/sim/collectives/gather-scatter.js';
import { blockTime } from '../src/sim/block.js';
import { hostBoundUs, hostUs } from '../src/sim/host.js';
import { gemmUs } from '../src/sim/compute.js';
import { glueWork, memoryBoundUs, ropeWork, routingWork, sortChunksWork } from '../src/sim/kernels.js';
import { resolveLayout } from '../src/sim/layout.js';
import { blockParams } from '../src/core/model/params.js';
import type { SwitchLayerTime } from '../src/sim/layer-time.js';
import { cfg } from './helpers.js';

// The kernel-level terms (src/sim/kernels.ts, host.ts, block.ts) in closed form, on round numbers.
const close = (a: number, b: number, rel = 1e-9) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

/**
 * HBM 1,000 GB/s, streaming kernels at half of it, gathers at a quarter, 2 µs a kernel; the host 10 µs a kernel
 * forward and 5 backward; 3 and 4 glue kernels a Switch layer. GEMM FLOPs and attention all but free (10⁹
 * TFLOP/s, no fixed cost), so a block's GPU time is its memory traffic alone, its GEMMs' operands included.
 */
const kernels = {
  hbm_efficiency: 0.5, gather_efficiency: 0.25, floor_us: 2, host_forward_us: 10, host_backward_us: 5, moe_glue_forward: 3, moe_glue_backward: 4,
};
const cluster = (extra: Partial<Cluster> = {}): Cluster => validateCluster({
  name: 'test', nodes: 1, gpus_per_node: 8,
  gpu: { name: 'test', tflops_bf16: 1e9, tflops_fp32: 1e9, hbm_gbps: 1000, matmul_efficiency: 1 },
  intra_node: { gbps: 100, latency_us: 2 }, inter_node: { gbps: 10, latency_us: 5 }, collective_latency_us: 1, all_to_all: 'flat', precision: 'bf16',
  kernels, ...extra,
});

test('memory-bound kernels: n · floor + streaming bytes / (B · e) + gathered bytes / (B · e_gather); without cluster.kernels, bytes at peak', (t) => {
  const w = { kernels: [], attentionFlops: 0, attentionKernels: 0, bytes: 1e6, gatherBytes: 1e6, memKernels: 3, fixedUs: 0 };
  // 3 · 2 µs + 1 MB at 500 GB/s (2 µs) + 1 MB at 250 GB/s (4 µs)
  t.true(close(memoryBoundUs(cluster(), w), 12));
  const { kernels: _, ...bare } = cluster();
  t.true(close(memoryBoundUs(validateCluster(bare), w), 2), 'no section: 2 MB at 1,000 GB/s, no fixed cost');
});

test('routing, permutation, RoPE and the sort into expert order: bytes and kernels by hand', (t) => {
  // 2 sequences of 64 tokens, d 64 (b = 2: a row is 128 bytes), 4 heads of 16, 4 experts, top-2, tp 1
  const config = cfg('parallel.devices=4', 'moe.top_k=2', 'data.batch_size=16', 'plan.micro_batch=2', 'plan.ep=4');
  const L = resolveLayout(config, cluster(), 65);
  t.is(L.tokensPerGpu, 128);
  // router: 128 · (12·4 + 12·2) = 9,216 B; permutation and unpermutation: 128 · 2·3 · 128 = 98,304 B forward,
  // 128 · (3·2 + 2) · 128 = 131,072 B backward; softmax, top-k, permute, unpermute: 4 kernels
  t.deepEqual(routingWork(config, L, 2), { bytes: 9216, gatherBytes: 98304, gatherBackwardBytes: 131072, memKernels: 4 });
  // q and k heads (4 + 4) · 16 values of 128 tokens, read and written: 2 · 8 · 16 · 128 · 2 = 65,536 B, two kernels
  t.deepEqual(ropeWork(L, 2), { bytes: 65536, gatherBytes: 0, gatherBackwardBytes: 0, memKernels: 2 });
  // one expert a GPU: nothing to sort; 8 experts over ep 4: 2 a GPU, R = 256 rows sorted twice, 4 · 256 · 128 B
  t.is(sortChunksWork(config, L, 256, 2).gatherBytes, 0);
  const eight = cfg('parallel.devices=8', 'moe.n_experts=8', 'moe.top_k=2', 'data.batch_size=16', 'plan.micro_batch=2', 'plan.ep=4');
  t.deepEqual(sortChunksWork(eight, resolveLayout(eight, cluster(), 65), 256, 2),
    { bytes: 0, gatherBytes: 131072, gatherBackwardBytes: 131072, memKernels: 2 });
  t.deepEqual([glueWork(cluster(), 'forward').memKernels, glueWork(cluster(), 'backward').memKernels], [3, 4]);
});

test('GEMMs no faster than their operands move: max(FLOPs / rate, bytes / (B · e)); a weight gradient reads and writes its output', (t) => {
  const c = cluster({ gpu: { ...cluster().gpu, tflops_bf16: 100 } }); // 100 TFLOP/s at efficiency 1, 500 GB/s for operands
  const config = cfg();
  // [128, 1024]·[1024, 1024]: 268,435,456 FLOPs, 2.68435456 µs; bf16 operands 2·(128·1024 + 1024² + 128·1024) =
  // 2,621,440 B, 5.24288 µs: the weights' read paces it
  t.true(close(gemmUs(c, config, [{ m: 128, k: 1024, n: 1024 }]), 5.24288));
  // [4096, 1024]·[1024, 1024]: 85.89934592 µs of FLOPs over 18,874,368 B (37.748736 µs): compute paces it
  t.true(close(gemmUs(c, config, [{ m: 4096, k: 1024, n: 1024 }]), 85.89934592));
  // a weight gradient [1024, 128]·[128, 1024] added into its [1024, 1024] buffer: 2·(131,072 + 131,072) + 2·2·1024² B
  t.true(close(gemmUs(c, config, [{ m: 1024, k: 128, n: 1024, accumulate: true }]), (524288 + 4194304) / 500e9 * 1e6));
  const { kernels: _, ...bare } = c;
  t.true(close(gemmUs(validateCluster(bare), config, [{ m: 128, k: 1024, n: 1024 }]), 2.68435456), 'no cluster.kernels: FLOPs alone');
});

test('the host: n kernels at h µs each; a pass takes max(T_gpu, n · h), so it adds max(0, n · h − T_gpu)', (t) => {
  t.is(hostUs(cluster(), { direction: 'forward', kernels: 10 }), 100);
  t.is(hostUs(cluster(), { direction: 'backward', kernels: 10 }), 50);
  t.is(hostBoundUs(cluster(), { direction: 'forward', kernels: 10, gpuUs: 60 }), 40);
  t.is(hostBoundUs(cluster(), { direction: 'forward', kernels: 10, gpuUs: 150 }), 0, 'the GPU paces it: the host is ahead');
  const { kernels: _, ...bare } = cluster();
  t.is(hostBoundUs(validateCluster(bare), { direction: 'forward', kernels: 10, gpuUs: 0 }), 0, 'no cluster.kernels: no host cost');
});

test('a dense block whose kernels are short is paced by the host: forward 12 kernels, backward 16, by hand', (t) => {
  // block 0 dense (relu FFN of 128), 2 × 64 tokens, tp 1; the block's memory-bound values: norms and adds 128·10·64,
  // attention in and out 128·(2·4 + 2·4)·16, the FFN's activation 128·2·128: 147,456 values, 294,912 B, plus RoPE
  // 65,536 B = 360,448 B at 500 GB/s = 0.720896 µs; 7 kernels (2 norms, 2 adds, the activation, RoPE on q and k)
  const config = cfg('parallel.devices=4', 'model.first_dense_layers=1', 'data.batch_size=16', 'plan.micro_batch=2', 'plan.ep=4');
  const L = resolveLayout(config, cluster(), 65);
  const b = blockTime(cluster(), config, L, 0, () => t.fail('a dense block has no Switch layer') as never, () => {});
  // GEMM operands (bf16) at 500 GB/s, forward: q·k·v [128, 64]·[64, 192] 90,112 B, output [128, 64]·[64, 64] 40,960,
  // FFN up [128, 64]·[64, 128] and down [128, 128]·[128, 64] 65,536 each: 262,144 B, 0.524288 µs; backward the input
  // gradients as much again, the weight gradients (their [k, n] read and written) 114,688 + 49,152 + 81,920 + 81,920:
  // 589,824 B, 1.179648 µs
  const fwd = 7 * 2 + 0.720896 + 0.524288;
  const bwd = 7 * 2 + 2 * 0.720896 + 1.179648;
  t.true(close(b.dense_us, fwd + bwd, 1e-6), `dense ${b.dense_us}`);
  // forward: 4 GEMMs (q·k·v, the output projection, the FFN's two) + attention + 7 = 12 kernels at 10 µs;
  // backward: 8 GEMMs + attention + 7 = 16 at 5 µs
  t.true(close(b.host_us, 12 * 10 - fwd + (16 * 5 - bwd), 1e-6), `host ${b.host_us}`);
});

test('a Switch block: its kernels, glue and all-to-alls on the host; the all-to-all split 2 of 4 exchanges forward', (t) => {
  const config = cfg('parallel.devices=4', 'moe.top_k=2', 'data.batch_size=16', 'plan.micro_batch=2', 'plan.ep=4');
  const L = resolveLayout(config, cluster(), 65);
  const layer = { expert_us: 30, expert_forward_us: 10, exposed_comm_us: 8 } as SwitchLayerTime;
  const b = blockTime(cluster(), config, L, 0, () => layer, () => {});
  // memory-bound forward: values 128·640 + 128·256 = 114,688 (229,376 B) + RoPE 65,536 + router 9,216 = 304,128 B at
  // 500 GB/s = 0.608256 µs; gathers 98,304 B at 250 GB/s = 0.393216 µs; kernels 4 + 2 + 4 = 10, + 3 glue: 26 µs
  // GEMM operands: q·k·v 90,112 B, output 40,960, router [128, 64]·[64, 4] 17,920: 148,992 B, 0.297984 µs
  const fwd = 26 + 0.608256 + 0.393216 + 0.297984;
  // backward: streaming twice (1.216512 µs), gathers 131,072 B (0.524288 µs), 10 + 4 glue kernels (28 µs); GEMMs:
  // input gradients 148,992 B, weight gradients 114,688 + 49,152 + 18,432: 331,264 B, 0.662528 µs
  const bwd = 28 + 1.216512 + 0.524288 + 0.662528;
  t.true(close(b.dense_us, fwd + bwd, 1e-6), `dense ${b.dense_us}`);
  // host forward: 3 GEMMs (q·k·v, output, router) + attention + 10 + 3 glue + the experts' 2 grouped GEMMs and
  // activation + 2 all-to-alls = 22 kernels, 220 µs, against fwd + 10 (experts) + 8 · 2/4 (all-to-all)
  // backward: 6 GEMMs + attention + 10 + 4 glue + 4 + 1 + 2 = 28 kernels, 140 µs, against bwd + 20 + 4
  t.true(close(b.host_us, 220 - (fwd + 10 + 4) + (140 - (bwd + 20 + 4)), 1e-6), `host ${b.host_us}`);
});

test('FSDP: each pass\'s gathers hide behind that pass\'s whole compute, experts included; one backward gather serves the recompute', (t) => {
  const c = cluster({ kernels: undefined });
  const sets = ['parallel.devices=4', 'moe.top_k=2', 'data.batch_size=16', 'plan.micro_batch=2', 'plan.ep=1', 'plan.shard=full'];
  const config = cfg(...sets);
  const L = resolveLayout(config, c, 65);
  const p = blockParams(config, 0);
  const dense = 2 * (p.norms + p.attention + p.ffn);
  const experts = 2 * p.experts;
  // dp 8 = edp 8 on one node: 1 + 7 · 2 µs + 7/8 of the bytes at 100 GB/s, each of the two gathers and scatters
  const ag = (bytes: number) => 1 + 7 * 2 + ((7 / 8) * bytes) / 100e9 * 1e6;
  t.true(close(allGatherUs(c, L.groups.dp, dense) + allGatherUs(c, L.groups.edp, experts), ag(dense) + ag(experts)));
  const AG = ag(dense) + ag(experts);
  const RS = reduceScatterUs(c, L.groups.dp, dense) + reduceScatterUs(c, L.groups.edp, experts);
  const counted: { name: string; count: number }[] = [];
  const layer = (fwdUs: number, allUs: number) => ({ expert_us: allUs, expert_forward_us: fwdUs, exposed_comm_us: 0 }) as SwitchLayerTime;
  const note = (name: string, _us: number, count: number) => counted.push({ name, count });
  // experts of 5 µs forward and 10 backward: the forward hides 5 µs (+ the free dense), the backward 10
  const b = blockTime(c, config, L, 0, () => layer(5, 15), note);
  t.true(close(b.fsdp_us, Math.max(0, AG - (5 + b.forward_us)) + Math.max(0, AG + RS - (10 + b.backward_us)), 1e-9), `fsdp ${b.fsdp_us}`);
  t.true(b.fsdp_us > 0);
  // experts long enough to hide everything: nothing exposed (the old model hid behind the dense compute alone)
  t.is(blockTime(c, config, L, 0, () => layer(1e6, 3e6), () => {}).fsdp_us, 0);
  t.like(counted.find((x) => x.name === 'fsdp all_gather'), { count: 2 });
  const full = cfg(...sets, 'plan.recompute=full');
  const again: { name: string; count: number }[] = [];
  blockTime(c, full, resolveLayout(full, c, 65), 0, () => layer(5, 20), (name, _us, count) => again.push({ name, count }));
  t.like(again.find((x) => x.name === 'fsdp all_gather'), { count: 2 }, 'full recompute: still two gathers a micro-batch');
});
