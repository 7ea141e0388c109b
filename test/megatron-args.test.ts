import test from 'ava';
import { resolveConfig } from '../src/core/config/load.js';
import { megatronLine } from '../src/core/config/megatron-emit.js';
import { words } from '../src/core/config/megatron-flags.js';
import { cli } from './helpers.js';

/** Megatron-LM command lines as plans: hand-worked readings, refusals, and the round trip through megatronLine. */
const MODEL = (name: string) => new URL(`../configs/models/${name}.yaml`, import.meta.url).pathname;
const CLUSTER = (name: string) => new URL(`../configs/clusters/${name}.yaml`, import.meta.url).pathname;
/** `switch-sim simulate ARGS` in this process (helpers' cli): exit code, stdout and stderr, no process to start */
const simulate = (...args: string[]) => cli('simulate', ...args);
const HF = (name: string) => new URL(`./fixtures/hf/${name}.json`, import.meta.url).pathname;
const parse = (line: string, file = MODEL('qwen3-30b-a3b'), sets: string[] = []) => resolveConfig({ file, megatron: line, sets });
const refusal = (line: string, file?: string) => {
  try {
    parse(line, file);
    return 'accepted';
  } catch (e) {
    return (e as Error).message.replace(/^config error: /, '');
  }
};

test("NVIDIA's Qwen3-235B-A22B H100 recipe: pp 8 × vpp 4 from 3 blocks a virtual stage over 96 slots", (t) => {
  // yanring/Megatron-MoE-ModelZoo best_practice/qwen3/run_h100_235b.sh and model_configs/benchmarking/Qwen3-235B-A22B.yaml
  const r = parse(`--seq-length 4096 --global-batch-size 2048 --micro-batch-size 1 --bf16 \\
    --tensor-model-parallel-size 2 --sequence-parallel --pipeline-model-parallel-size 8 --num-layers-per-virtual-pipeline-stage 3 \\
    --account-for-embedding-in-pipeline-split --account-for-loss-in-pipeline-split \\
    --expert-model-parallel-size 32 --expert-tensor-parallel-size 1 --use-distributed-optimizer \\
    --recompute-granularity selective --recompute-modules moe_act layernorm --moe-token-dispatcher-type flex \\
    --overlap-moe-expert-parallel-comm --moe-router-force-load-balancing --moe-grouped-gemm --lr 1.2e-4 --manual-gc`,
  HF('qwen3-235b-a22b'));
  t.deepEqual(r.config.plan, {
    tp: 2, pp: 8, vpp: 4, decoder_first_pipeline_num_layers: 0, decoder_last_pipeline_num_layers: 0,
    account_for_embedding_in_pipeline_split: true, account_for_loss_in_pipeline_split: true, cp: 1, ep: 32, etp: 1,
    shard: 'optimizer', micro_batch: 1, global_batch: 2048, recompute: 'selective', recompute_modules: ['moe_act', 'layernorm'],
    precision: 'bf16', routing: 'uniform', dispatch: 'dropless', dispatcher: 'flex', dispatch_fwd_dtype: 'bf16', overlap: 'a2a',
    redundant_experts: 0,
  });
  t.is(r.config.data.seq_len, 4096);
  t.false(r.config.moe.drop_tokens, 'no --moe-expert-capacity-factor: dropless');
  t.deepEqual(r.ignored, ['--moe-grouped-gemm', '--lr', '--manual-gc']);
  // flags of published recipes that change neither the plan nor its cost (loss masking, checkpoint format, RoPE
  // scaling, initialisation, router jitter), with their values: read and set aside
  const recipe = '--eod-mask-loss --calculate-per-token-loss --no-check-for-nan-in-loss-and-grad --dataloader-type cyclic '
    + '--use-dist-ckpt --async-save --rope-type yarn --beta-fast 32 --beta-slow 1 --original-max-position-embeddings 4096 '
    + '--apply-layernorm-1p --te-rng-tracker --moe-input-jitter-eps 0.01';
  const more = parse(`--bf16 --pipeline-model-parallel-size 2 ${recipe}`);
  t.is(more.config.plan.pp, 2, 'the values of ignored flags are not read as flags');
  t.deepEqual(more.ignored, recipe.split(' ').filter((w) => w.startsWith('--')));
  // absent flags take Megatron-LM's defaults, not the config file's plan (qwen3-30b-a3b.yaml: ep 8, distributed optimizer)
  const bare = parse('--bf16').config.plan;
  t.like(bare, { tp: 1, pp: 1, ep: 1, etp: 1, shard: 'none', recompute: 'none', dispatcher: 'allgather', micro_batch: 1 });
  t.is(parse('--bf16 --tensor-model-parallel-size 2 --sequence-parallel').config.plan.etp, 2, 'etp defaults to tp');
});

test("DeepSeek-V3's shape flags (the ModelZoo yaml) give the model and moe of its config.json", (t) => {
  const line = `--bf16 --num-layers 61 --hidden-size 7168 --ffn-hidden-size 18432 --num-attention-heads 128 --swiglu
    --multi-latent-attention --q-lora-rank 1536 --kv-lora-rank 512 --qk-head-dim 128 --qk-pos-emb-head-dim 64 --v-head-dim 128
    --num-experts 256 --moe-ffn-hidden-size 2048 --moe-shared-expert-intermediate-size 2048 --moe-router-topk 8
    --moe-layer-freq "([0]*3+[1]*58)" --moe-router-num-groups 8 --moe-router-group-topk 4 --moe-router-topk-scaling-factor 2.5
    --moe-router-score-function sigmoid --moe-router-enable-expert-bias --moe-router-load-balancing-type seq_aux_loss
    --mtp-num-layers 1 --vocab-size 129280 --position-embedding-type rope --untie-embeddings-and-output-weights`;
  const fromFlags = parse(line, MODEL('deepseek-v3')).config;
  const fromHf = resolveConfig({ file: HF('deepseek-v3') }).config;
  t.deepEqual(fromFlags.model, fromHf.model);
  t.deepEqual(fromFlags.moe, fromHf.moe);
});

test('shape flags worked by hand: padded vocabulary, grouped-query attention, ignored MLA sizes, the MoE pattern', (t) => {
  const m = (line: string) => parse(`--bf16 ${line}`).config.model;
  // vocab_size_with_padding: 151936 up to a multiple of 128 · tp 2 = 256 is 152064; NVIDIA's recipe pads by 1187 · 2
  t.is(m('--vocab-size 151936 --tensor-model-parallel-size 2 --sequence-parallel').vocab_size, 152064);
  t.is(m('--vocab-size 151936 --make-vocab-size-divisible-by 1187 --tensor-model-parallel-size 2 --sequence-parallel').vocab_size, 151936);
  t.is(m('--group-query-attention --num-query-groups 2').n_kv_heads, 2);
  t.deepEqual(parse('--bf16 --num-query-groups 2 --kv-lora-rank 64').ignored, ['--num-query-groups', '--kv-lora-rank'],
    'only read with --group-query-attention / --multi-latent-attention');
  t.like(m('--num-layers 6 --moe-layer-freq ([0]*2+[1]*4)'), { first_dense_layers: 2, switch_every: 1 });
  t.like(m("--num-layers 6 --moe-layer-freq '[0,1,0,1,0,1]'"), { first_dense_layers: 0, switch_every: 2 });
  t.deepEqual(words(`--a "x y" 'z' \\\n --b=c\\ d`), ['--a', 'x y', 'z', '--b=c d']);
});

test('flags switch-sim cannot represent, and broken combinations, are refused in one line naming the flag', (t) => {
  const cases: [string, string][] = [
    ['--bf16 --foo 1', 'unknown Megatron-LM flag --foo: switch-sim neither maps it nor knows it changes nothing it models'],
    ['--bf16 --sequence-paralel', 'unknown Megatron-LM flag --sequence-paralel (did you mean --sequence-parallel?): '
      + 'switch-sim neither maps it nor knows it changes nothing it models'],
    ['--bf16=yes', '--bf16 takes no value (got "yes")'],
    ['--bf16 --micro-batch-size', '--micro-batch-size needs a value (got nothing)'],
    ['--bf16 --micro-batch-size two', '--micro-batch-size must be an integer (got "two")'],
    ['--bf16 --micro-batch-size 0', '--micro-batch-size must be an integer >= 1 (got 0)'],
    ['--bf16 --fp8-format e5m2', '--fp8-format must be one of e4m3|hybrid (got "e5m2")'],
    ['--tensor-model-parallel-size 1', '--megatron-args must give --bf16 (or --fp8-format): Megatron-LM trains in fp32 '
      + 'without, which switch-sim does not model (got "--tensor-model-parallel-size 1")'],
    ['--bf16 --fp16', '--fp16 is not modelled: switch-sim computes in bf16 (--bf16) or fp8 (--fp8-format) (got true)'],
    ['--bf16 --tensor-model-parallel-size 2', '--sequence-parallel is needed with --tensor-model-parallel-size > 1: '
      + 'switch-sim splits the sequence over tp (got false)'],
    ['--bf16 --pipeline-model-parallel-layout E|t*24|t*24|L', '--pipeline-model-parallel-layout is not modelled: give '
      + '--decoder-first/last-pipeline-num-layers or the account-for flags (got "E|t*24|t*24|L")'],
    ['--bf16 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 2 --num-virtual-stages-per-pipeline-rank 2',
      '--num-layers-per-virtual-pipeline-stage must not be given with --num-virtual-stages-per-pipeline-rank (got 2)'],
    ['--bf16 --pipeline-model-parallel-size 2 --decoder-first-pipeline-num-layers 24 --num-layers-per-virtual-pipeline-stage 2',
      '--num-layers-per-virtual-pipeline-stage must not be given with --decoder-first/last-pipeline-num-layers: give '
      + '--num-virtual-stages-per-pipeline-rank (got 2)'],
    ['--bf16 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 5',
      '--num-layers-per-virtual-pipeline-stage must divide the 24 block slots of each rank (got 5)'],
    ['--bf16 --pipeline-model-parallel-size 5 --num-layers-per-virtual-pipeline-stage 2',
      '--num-layers-per-virtual-pipeline-stage needs the 48 block slots divisible by --pipeline-model-parallel-size (5) (got 2)'],
    ['--bf16 --use-torch-fsdp2 --pipeline-model-parallel-size 2', '--use-torch-fsdp2 needs --pipeline-model-parallel-size 1 (got true)'],
    ['--bf16 --use-torch-fsdp2 --use-distributed-optimizer', '--use-torch-fsdp2 must not be given with --use-distributed-optimizer (got true)'],
    ['--bf16 --use-megatron-fsdp --data-parallel-sharding-strategy optim_grads',
      '--data-parallel-sharding-strategy is not modelled (ZeRO-2): give optim or optim_grads_params (got "optim_grads")'],
    ['--bf16 --recompute-granularity full', '--recompute-method must be uniform or block with --recompute-granularity full (got nothing)'],
    ['--bf16 --recompute-granularity full --recompute-method block --recompute-num-layers 2', '--recompute-method block (only '
      + 'the first N blocks of each stage) is not modelled: give uniform with --recompute-num-layers 1 (got "block")'],
    ['--bf16 --recompute-granularity full --recompute-method uniform --recompute-num-layers 2', '--recompute-num-layers must be 1 '
      + 'with --recompute-method uniform: switch-sim recomputes each block from its own input (got 2)'],
    ['--bf16 --recompute-granularity selective --recompute-method uniform',
      '--recompute-method must not be given with --recompute-granularity selective (got "uniform")'],
    ['--bf16 --recompute-granularity selective --recompute-modules mhc', '--recompute-modules mhc is not modelled (got ["mhc"])'],
    ['--bf16 --recompute-granularity selective --recompute-modules attn', '--recompute-modules must be among core_attn|layernorm|'
      + 'moe_act|mla_up_proj|mlp|moe|shared_experts|gdn_norm_out|gdp_in_proj|gdp_qkv|mhc (got ["attn"])'],
    ['--bf16 --moe-enable-deepep', '--moe-enable-deepep needs --moe-token-dispatcher-type flex and not '
      + '--moe-flex-dispatcher-backend hybridep (got true)'],
    ['--bf16 --moe-token-dispatcher-type flex --moe-dispatch-fwd-dtype mxfp8', '--moe-dispatch-fwd-dtype mxfp8 needs '
      + '--moe-token-dispatcher-type flex with --moe-flex-dispatcher-backend ncclep (the only Megatron-Core backend with a '
      + 'wire dtype) (got "mxfp8")'],
    ['--bf16 --moe-pad-expert-input-to-capacity', '--moe-pad-expert-input-to-capacity needs --moe-expert-capacity-factor (got true)'],
    ['--bf16 --moe-layer-freq 2', "--moe-layer-freq must give dense blocks first, then an MoE block every k (switch-sim's pattern) (got \"2\")"],
    ['--bf16 --moe-shared-expert-intermediate-size 1000', "--moe-shared-expert-intermediate-size must be a multiple of the "
      + "experts' width (768) (got 1000)"],
    // a rule of the schema broken by a key the flags set names the flag too
    ['--bf16 --context-parallel-size 3', 'plan.cp (--context-parallel-size) must be 1 or have 2 · plan.cp divide data.seq_len '
      + '(4096): Megatron-Core cuts each sequence into 2 · cp chunks, two per rank (got 3)'],
    ['--bf16 --pipeline-model-parallel-size 8 --decoder-first-pipeline-num-layers 10', 'plan.decoder_first_pipeline_num_layers '
      + '(--decoder-first-pipeline-num-layers) must leave blocks that the 7 ranks between first and last share equally '
      + '(model.n_layers (48) − first (10) − last (0) = 38) (got 10)'],
  ];
  for (const [line, message] of cases) t.is(refusal(line), message, line);
});

/** Plans over the shipped models: the flags printed and read back over the same model give the same config. */
const PLANS: [string, string[]][] = [
  [HF('qwen3-235b-a22b'), ['plan.tp=2', 'plan.pp=8', 'plan.vpp=4', 'plan.account_for_embedding_in_pipeline_split=true',
    'plan.account_for_loss_in_pipeline_split=true', 'plan.ep=32', 'plan.shard=optimizer', 'plan.recompute=selective',
    'plan.recompute_modules=[moe_act, layernorm]', 'plan.dispatcher=flex', 'plan.overlap=a2a', 'plan.routing=uniform',
    'plan.micro_batch=1', 'plan.global_batch=2048', 'data.seq_len=4096']],
  [HF('qwen3-235b-a22b'), ['plan.pp=8', 'plan.vpp=2', 'plan.decoder_first_pipeline_num_layers=6',
    'plan.decoder_last_pipeline_num_layers=4', 'plan.ep=8', 'plan.micro_batch=2', 'plan.global_batch=512', 'plan.cp=2']],
  [MODEL('deepseek-v3'), ['plan.decoder_first_pipeline_num_layers=4', 'plan.decoder_last_pipeline_num_layers=1',
    'plan.dispatcher=flex', 'plan.dispatch_fwd_dtype=mxfp8']],
  [MODEL('mixtral-8x7b'), ['plan.tp=2', 'plan.etp=1', 'plan.shard=full', 'plan.cp=4', 'plan.dispatcher=allgather',
    'moe.drop_tokens=true', 'moe.capacity_factor=1.5', 'plan.dispatch=padded', 'plan.precision=fp8', 'plan.recompute=full']],
  [MODEL('qwen3-30b-a3b'), ['plan.recompute=none', 'plan.shard=none', 'plan.etp=2', 'plan.tp=2']],
];

test('round trip: a plan printed as Megatron-LM flags and read back over the same model is the same config', (t) => {
  for (const [file, sets] of PLANS) {
    const config = resolveConfig({ file, sets }).config;
    const line = megatronLine(config);
    const back = resolveConfig({ file, megatron: line }).config;
    t.deepEqual(back, config, line);
  }
  const qwen = resolveConfig({ file: PLANS[0]![0], sets: PLANS[0]![1] }).config;
  t.is(megatronLine(qwen), '--seq-length 4096 --global-batch-size 2048 --micro-batch-size 1 --bf16 --tensor-model-parallel-size 2 '
    + '--sequence-parallel --pipeline-model-parallel-size 8 --num-virtual-stages-per-pipeline-rank 4 '
    + '--account-for-embedding-in-pipeline-split --account-for-loss-in-pipeline-split --context-parallel-size 1 '
    + '--expert-model-parallel-size 32 --expert-tensor-parallel-size 1 --use-distributed-optimizer '
    + '--recompute-granularity selective --recompute-modules moe_act layernorm --moe-token-dispatcher-type flex '
    + '--overlap-moe-expert-parallel-comm --moe-router-force-load-balancing');
  t.throws(() => megatronLine(resolveConfig({ sets: ['plan.micro_batch=1'] }).config),
    { message: 'config error: plan.ep must be set for Megatron-LM flags: 0 (as many as fit) needs a cluster (got 0)' });
  t.regex(megatronLine(resolveConfig().config, { ep: 2, micro_batch: 4 }), /--micro-batch-size 4 .*--expert-model-parallel-size 2 /);
  // a plan Megatron-LM cannot train is refused, not emitted without the part it cannot say
  t.throws(() => megatronLine(resolveConfig({ sets: ['plan.ep=2', 'plan.micro_batch=1', 'plan.redundant_experts=2'] }).config),
    { message: 'config error: plan.redundant_experts must be 0 for Megatron-LM flags: Megatron-Core places each expert '
      + 'once; redundant copies are DeepSeek\'s EPLB, which it does not train with (got 2)' });
});

test.serial('the CLI: simulate --emit megatron prints one line; --megatron-args sits between --config and --set; bad input exits 2', async (t) => {
  const mixtral = await simulate('--cluster', CLUSTER('64x8xh100'), '--config', MODEL('mixtral-8x7b'),
    '--emit', 'megatron');
  t.is(mixtral.status, 0, mixtral.stderr);
  t.is(mixtral.stdout, `${megatronLine(resolveConfig({ file: MODEL('mixtral-8x7b') }).config)}\n`);
  // plan.ep 0 and plan.micro_batch 0 as the cluster resolves them: 8 GPUs, 128 experts → ep 8; 64 sequences / dp 8
  const auto = await simulate('--cluster', CLUSTER('8xh100'), '--config', MODEL('switch-base'), '--set', 'plan.ep=0',
    '--emit', 'megatron');
  t.regex(auto.stdout, /^--seq-length 512 --global-batch-size 64 --micro-batch-size 8 .*--expert-model-parallel-size 8 /);
  const layered = await simulate('--cluster', CLUSTER('64x8xh100'), '--config', MODEL('mixtral-8x7b'), '--megatron-args',
    '--bf16 --micro-batch-size 2 --pipeline-model-parallel-size 4 --expert-model-parallel-size 8 --lr 1e-4 --seed 7',
    '--set', 'plan.pp=2', '--emit', 'megatron');
  t.is(layered.status, 0, layered.stderr);
  t.regex(layered.stdout, /--micro-batch-size 2 .*--pipeline-model-parallel-size 2 /, '--set after the flags');
  t.is(layered.stderr, 'warning: --megatron-args ignores --lr --seed: they change nothing switch-sim models\n');
  const unknown = await simulate('--cluster', CLUSTER('8xh100'), '--config', MODEL('switch-base'),
    '--megatron-args', '--bf16 --foo 1');
  t.is(unknown.status, 2);
  t.is(unknown.stderr, 'config error: unknown Megatron-LM flag --foo: switch-sim neither maps it nor knows it changes nothing '
    + 'it models\n');
  const format = await simulate('--cluster', CLUSTER('8xh100'), '--config', MODEL('switch-base'), '--emit', 'json');
  t.is(format.status, 2);
  t.is(format.stderr, 'config error: --emit must be megatron (got "json")\n');
});
