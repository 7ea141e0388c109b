import test from 'ava';
import { validateCluster } from '../src/sim/cluster.js';
import { resolveLayout } from '../src/sim/layout.js';
import { activationBytesPerToken } from '../src/sim/memory.js';
import { project } from '../src/sim/project.js';
import { exchangesPerLayer, expertRecomputeWork, freedActivations, recomputedModules, selectiveWork } from '../src/sim/recompute.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { cfg } from './helpers.js';

// Selective recompute (plan.recompute_modules) module by module: what each runs again and the activation bytes it
// frees, by hand on d 64, 4 heads of 16, d_ff 128 (relu), 4 experts top-1, one sequence of 64 tokens a micro-batch.
const close = (a: number, b: number, rel = 1e-9) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
const cluster = validateCluster({
  name: 'flops', nodes: 1, gpus_per_node: 4,
  gpu: { name: 'flops', tflops_bf16: 100, tflops_fp32: 100, hbm_gbps: 1000, matmul_efficiency: 1 },
  intra_node: { gbps: 100, latency_us: 2 }, inter_node: { gbps: 10, latency_us: 5 }, collective_latency_us: 1, all_to_all: 'flat', precision: 'bf16',
});
// block 0 dense, block 1 a Switch block with one shared expert of 128
const shape = ['parallel.devices=4', 'data.batch_size=4', 'data.seq_len=64', 'model.first_dense_layers=1', 'moe.shared_experts=1', 'moe.drop_tokens=false'];
const config = (...modules: string[]) => cfg(...shape, 'plan.recompute=selective', `plan.recompute_modules=[${modules.join(',')}]`);
const L = resolveLayout(config(), cluster, 65);
const T = 64;
const h = 64;

test('the modules run again: none listed is Megatron-Core\'s default, core_attn; none without plan.recompute selective', (t) => {
  t.deepEqual([...recomputedModules(config())], ['core_attn']);
  t.deepEqual([...recomputedModules(cfg(...shape))], []);
  t.deepEqual([...recomputedModules(config('moe_act', 'layernorm'))], ['moe_act', 'layernorm']);
});

test('what each module runs again, by hand (forward work of block 0, dense, and block 1, Switch)', (t) => {
  t.like(selectiveWork(config('core_attn'), L, 0, 2), { kernels: [], attentionFlops: 2 * T * T * h, attentionKernels: 1, bytes: 0 });
  t.like(selectiveWork(config('layernorm'), L, 0, 2), { kernels: [], attentionFlops: 0, bytes: T * 4 * h * 2, memKernels: 2 });
  // mlp: the dense FFN's two GEMMs and its activation (relu: 2 values of 128 a token)
  t.deepEqual(selectiveWork(config('mlp'), L, 0, 2).kernels, [[{ m: T, k: h, n: 128 }], [{ m: T, k: 128, n: h }]]);
  t.is(selectiveWork(config('mlp'), L, 0, 2).bytes, T * 2 * 128 * 2);
  t.deepEqual(selectiveWork(config('mlp'), L, 1, 2).kernels, [], 'a Switch block has no dense FFN');
  t.deepEqual(selectiveWork(config('shared_experts'), L, 1, 2).kernels, [[{ m: T, k: h, n: 128 }], [{ m: T, k: 128, n: h }]]);
  // moe: the shared expert and the router (its experts and exchanges: below)
  t.deepEqual(selectiveWork(config('moe'), L, 1, 2).kernels, [[{ m: T, k: h, n: 128 }], [{ m: T, k: 128, n: h }], [{ m: T, k: h, n: 4 }]]);
  // mla_up_proj: the two up-projections of a small MLA (dq 48, dc 32, dn 16, dr 8, dv 16)
  const mla = cfg(...shape, 'model.q_lora_rank=48', 'model.kv_lora_rank=32', 'model.qk_nope_head_dim=16', 'model.qk_rope_head_dim=8',
    'model.v_head_dim=16', 'plan.recompute=selective', 'plan.recompute_modules=[mla_up_proj]');
  t.deepEqual(selectiveWork(mla, resolveLayout(mla, cluster, 65), 0, 2).kernels, [[{ m: T, k: 48, n: 4 * 24 }], [{ m: T, k: 32, n: 4 * 32 }]]);
});

test('the experts run again: all their forward (moe, full) or their activation (moe_act); moe also exchanges twice more', (t) => {
  const rows = [16, 16, 16, 16];
  const forward = { kernels: [[{ m: 16, k: h, n: 128 }]], attentionFlops: 0, attentionKernels: 0, bytes: 1, fixedUs: 0 };
  t.is(expertRecomputeWork(config('moe'), L, rows, forward, 2), forward);
  t.is(expertRecomputeWork(cfg(...shape, 'plan.recompute=full'), L, rows, forward, 2), forward);
  t.like(expertRecomputeWork(config('moe_act'), L, rows, forward, 2), { kernels: [], bytes: 64 * 2 * 128 * 2, memKernels: 1 });
  t.is(expertRecomputeWork(config('layernorm'), L, rows, forward, 2), undefined);
  t.deepEqual([exchangesPerLayer(config('moe')), exchangesPerLayer(config('moe_act')), exchangesPerLayer(cfg(...shape, 'plan.recompute=full'))], [6, 4, 6]);
  const p = (c: ReturnType<typeof cfg>) => project(cluster, uniformWorkload(c)).collectives.find((x) => x.name.startsWith('ep all_to_all'))!.per_step;
  t.is(p(config('moe')), (6 / 4) * p(config('moe_act')));
});

test('activation bytes freed a token, by hand (bf16, tp 1): each module its own, moe everything of the layer but its input', (t) => {
  // layernorm: attention's 2h input and the FFN's (the dense FFN's, or the shared expert's) 2h
  t.is(freedActivations(config('layernorm'), L, 0), 4 * h);
  t.is(freedActivations(config('layernorm'), L, 1), 4 * h);
  t.is(freedActivations(config('mlp'), L, 0), 4 * 128, 'the dense FFN\'s hidden before and after relu, 2F + 2F');
  t.is(freedActivations(config('moe_act'), L, 1), 1 * 2 * 128, 'the activation\'s output, 2F a routed copy');
  t.is(freedActivations(config('shared_experts'), L, 1), 4 * 128);
  t.is(freedActivations(config('moe'), L, 1), 1 * (2 * h + 4 * 128) + 4 * 128, 'the routed copy and the shared expert\'s hidden');
  t.is(freedActivations(config('core_attn'), L, 0), 0, 'flash attention kept no scores: nothing more to free');
  t.is(activationBytesPerToken(cfg(...shape), L, 1, 2) - activationBytesPerToken(config('moe', 'layernorm'), L, 1, 2), 4 * h + 2 * h + 4 * 128 + 4 * 128);
});

test('in the step: selective recompute costs the forward of what it runs again, every block, every micro-batch', (t) => {
  // on this cluster the attention core is its FLOPs alone: 2·T²·h at 100 TFLOP/s plus nothing else
  const p = project(cluster, uniformWorkload(config('core_attn')));
  const perBlock = ((2 * T * T * h) / 100e12) * 1e6;
  t.true(close(p.breakdown_ms.recompute, (2 * perBlock * L.microBatches) / 1000));
});
