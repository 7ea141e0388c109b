import test from 'ava';
import { resolveConfig } from '../src/core/config/load.js';
import { blockParams, outerParams } from '../src/core/model/params.js';
import { loadCluster, validateCluster } from '../src/sim/cluster.js';
import { embeddingWork, endsTime } from '../src/sim/ends.js';
import { resolveLayout } from '../src/sim/layout.js';
import { activationBytesPerToken, stageParams } from '../src/sim/memory.js';
import { attentionFlops, modelFlopsPerStep } from '../src/sim/model-flops.js';
import { attentionActivations, attentionParams, attentionWork } from '../src/sim/shapes.js';

// DeepSeek's multi-head latent attention and multi-token prediction, in closed form on DeepSeek-V3's shape (h 7168,
// n 128, dq 1536, dc 512, dn 128, dr 64, dv 128; research notes §5.4: 374.2 MFLOP a token of projections forward,
// 187.1 M attention parameters a layer, 81,920 FLOPs a (token, key) pair in the core).
const close = (a: number, b: number, rel = 1e-12) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
const V3 = new URL('../configs/models/deepseek-v3.yaml', import.meta.url).pathname;
const v3 = (...sets: string[]) => resolveConfig({ file: V3, sets }).config;
const h800 = loadCluster(new URL('../configs/clusters/256x8xh800.yaml', import.meta.url).pathname);

test('MLA parameters: down-projections and latent norms replicated on every tp rank, up-projections and output split by heads', (t) => {
  const p = attentionParams(v3(), 3);
  t.is(p.replicated, 7168 * 1536 + 1536 + 7168 * 576 + 512); // 15,140,864
  t.is(p.split, 1536 * 128 * 192 + 512 * 128 * 256 + 128 * 128 * 7168); // 171,966,464
  t.is(p.replicated + p.split, 187_107_328);
  // without q_lora_rank: one q projection h → n·(dn + dr), split
  const noQ = attentionParams(v3('model.q_lora_rank=0'), 3);
  t.deepEqual(noQ, { replicated: 7168 * 576 + 512, split: 7168 * 128 * 192 + 512 * 128 * 256 + 128 * 128 * 7168 });
});

test('MLA model FLOPs, Megatron-LM\'s formula: 374,214,656 a token of projections, s·n·(dn + dr + dv) of core, per layer', (t) => {
  const s = 4096;
  // 2·[dq·(h + n(dn + dr) + 1) + dc·(h + n(dn + dv) + 1) + h·dr + n·dv·h] = 2 · 187,107,328
  t.is(attentionFlops(v3(), 1), 374_214_656 * s + s * s * 128 * 320);
  t.is(s * 128 * 320, 81_920 * 2048, 'the core: 81,920 FLOPs a (token, key) pair, 2,048 keys on average (causal)');
  // one step of one sequence: 61 layers and the MTP layer, each 1,334,710,272 a token (attention 374,214,656 + core
  // 167,772,160 + FFN 792,723,456: dense 4·h·18432·3/2 and MoE 4·h·2048·(8 + 1)·3/2 alike), logits 2·h·V twice
  // (the main head and MTP's), MTP's projection and norms 2·(2h² + 3h); all × 3
  const perToken = 3 * (62 * 1_334_710_272 + 2 * 2 * 7168 * 129280 + 2 * (2 * 7168 * 7168 + 3 * 7168));
  t.is(perToken, 259_992_950_784);
  t.true(close(modelFlopsPerStep(v3(), 1, 129280), perToken * s));
  t.true(close(modelFlopsPerStep(v3('model.mtp_layers=0'), 1, 129280), 3 * (61 * 1_334_710_272 + 2 * 7168 * 129280) * s));
});

test('MLA on one GPU at tp 2: its GEMMs (down-projections on the GPU\'s own T/tp tokens, the rest on n/tp heads), core, K/V', (t) => {
  const config = v3('plan.tp=2', 'plan.ep=32');
  const L = resolveLayout(config, h800, 129280);
  const w = attentionWork(config, L);
  t.deepEqual(w.gemms, [
    { m: 2048, k: 7168, n: 1536 }, { m: 2048, k: 7168, n: 576 }, // q_down, kv_down: replicated weights, 4096 / 2 tokens
    { m: 4096, k: 1536, n: 64 * 192 }, { m: 4096, k: 512, n: 64 * 256 }, // q_up, kv_up: 64 heads of 128
    { m: 4096, k: 64 * 128, n: 7168 }, // the output projection
  ]);
  t.deepEqual(w.up, [w.gemms[2], w.gemms[3]]);
  t.is(w.coreFlops, (4096 * 4096 * 128 * 320) / 2);
  t.is(w.kvPerToken, (128 * 320) / 2, 'K (dn + dr) and V (dv) of its 64 heads');
  t.is(w.values, (4096 * 128 * (2 * 192 + 2 * 128)) / 2 + 2048 * 2 * (1536 + 512), 'core in and out, the latent norms');
});

test('MLA activations: latents and Q, K, V a token; mla_up_proj frees Q, K and V (2n·(2(dn + dr) + dv) bytes)', (t) => {
  const config = v3('plan.tp=1');
  const L = resolveLayout(config, h800, 129280);
  const a = attentionActivations(config, L);
  t.is(a.upProj, 2 * 128 * (2 * 192 + 128));
  t.is(a.bytes, 2 * 7168 + 2 * 1536 + 2 * 576 + 2 * 1536 + 2 * 512 + a.upProj + 2 * 128 * 128);
  const none = v3('plan.recompute=none', 'plan.recompute_modules=[]');
  const up = v3('plan.recompute=selective', 'plan.recompute_modules=[mla_up_proj]');
  t.is(activationBytesPerToken(none, L, 3, 2) - activationBytesPerToken(up, L, 3, 2), a.upProj);
});

test('MTP: its block after the last, on the last rank, with a 2h → h projection, three norms and its own embedding copy', (t) => {
  const config = v3();
  const L = resolveLayout(config, h800, 129280);
  t.deepEqual(L.mtpBlocks, [61]);
  t.deepEqual(L.stages[15], [60, 61], 'the last rank: decoder_last_pipeline_num_layers 1 and the MTP block');
  t.deepEqual(L.stages.map((s) => s.length).slice(0, 15), [4, ...new Array(14).fill(4)]);
  const without = resolveLayout(v3('model.mtp_layers=0'), h800, 129280);
  const h = 7168;
  const b = blockParams(config, 61);
  const att = attentionParams(config, 61);
  const extra = b.norms + att.split + att.replicated + b.ffn + 2 * h * h + 6 * h + outerParams(config, 129280).embedding;
  t.is(stageParams(config, L, 15).dense - stageParams(v3('model.mtp_layers=0'), without, 15).dense, extra);
  t.is(stageParams(config, L, 15).experts - stageParams(v3('model.mtp_layers=0'), without, 15).experts, b.experts / 64);
});

test('the ends by hand: the embedding\'s forward gathers T rows, its backward writes the whole [V/tp, d] gradient', (t) => {
  // FLOPs free, HBM at 1,000 GB/s, no kernel floors: only bytes cost, 1 µs a MB
  const cc = validateCluster({ ...h800, gpu: { ...h800.gpu, tflops_bf16: 1e9, tflops_fp8: 1e9, kernel_us: 0, hbm_gbps: 1000 }, kernels: undefined });
  const config = v3('plan.tp=1');
  const L = resolveLayout(config, cc, 129280);
  const e = embeddingWork(config, L, 2);
  t.is(e.forward.bytes, 2 * 4096 * 7168 * 2);
  t.is(e.backward.bytes, 2 * 4096 * 7168 * 2 + 129280 * 7168 * (2 * 2 + 8));
  const first = endsTime(cc, config, L, 0);
  t.true(close(first.forward_us, e.forward.bytes / 1e6, 1e-9) && close(first.backward_us, e.backward.bytes / 1e6, 1e-9));
  t.is(endsTime(cc, config, L, 7).forward_us, 0, 'a middle rank has no ends');
  // the last rank: the head and its softmax twice (main and MTP), MTP's embedding, projection and norms
  const last = endsTime(cc, config, L, 15);
  const head = (4 * 4096 * 129280 * 2) / 1e6; // the logits' softmax bytes, forward (GEMMs free)
  const mtp = (4096 * 3 * 2 * 7168 * 2) / 1e6; // three norms, h read and written a token
  t.true(close(last.forward_us, 2 * head + e.forward.bytes / 1e6 + mtp, 1e-5), `${last.forward_us}`); // GEMMs: 0.02 µs
});
