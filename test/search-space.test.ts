import test from 'ava';
import { resolveConfig, validateConfig } from '../src/core/config/load.js';
import { loadCluster } from '../src/sim/cluster.js';
import { searchContext, type Plan } from '../src/sim/search/context.js';
import { dimensionValues, enumeratePlans } from '../src/sim/search/enumerate.js';
import { narrowing, parseSpace, pinnedKeys } from '../src/sim/search/narrow.js';
import { unevenSplits } from '../src/sim/search/pipelines.js';

// Which plans the search makes and which Megatron-Core accepts, worked by hand on a model small enough to list.

const CLUSTER = (name: string) => loadCluster(new URL(`../configs/clusters/${name}.yaml`, import.meta.url).pathname);
/** 4 layers, 4 heads, 4 experts, sequences of 64 tokens, 8 a step, on one node of 8 GPUs */
const SMALL = ['model.n_layers=4', 'model.n_heads=4', 'model.d_model=64', 'model.d_ff=128', 'moe.n_experts=4', 'data.seq_len=64',
  'data.batch_size=8', 'parallel.devices=4', 'plan.global_batch=8'];
const small = () => searchContext(resolveConfig({ sets: SMALL }).config, CLUSTER('8xh100'), 65);
/** the policies at one value each: the count is the parallel layout's */
const POLICY = new Map<string, unknown[]>([['plan.shard', ['none']], ['plan.recompute', ['none']], ['plan.overlap', ['none']],
  ['plan.dispatcher', ['alltoall']]]);
const splitOf = (p: Plan) => `pp ${p.pp} vpp ${p.vpp} first ${p.decoder_first_pipeline_num_layers} last `
  + `${p.decoder_last_pipeline_num_layers}${p.account_for_embedding_in_pipeline_split ? ' +embedding' : ''}`
  + `${p.account_for_loss_in_pipeline_split ? ' +loss' : ''}`;

test('the enumeration, worked by hand: 4 layers, 4 heads, 4 experts on 8 GPUs, a global batch of 8', (t) => {
  const ctx = small();
  // pipelines: pp 1, 2, 4 (divisors of 8, at most 4 layers) × vpp 1..3 × {even, embedding, loss, both slots (pp > 1)}
  // plus pp 2 vpp 1's uneven (1, 3) and (3, 1): 3 + 3·4 + 2 + 3·4 = 29; tensor (tp, etp): (1,1) (2,2) (2,1) (4,4) (4,1);
  // cp 1 (64 tokens); ep 1, 2, 4; micro-batch 1..256 (powers of two, at most 16,384 tokens): 9
  t.deepEqual(dimensionValues(ctx, POLICY).map((l) => l.values.length), [5, 1, 3, 9, 29, 1, 1, 1, 1, 1, 1, 1]);
  const bySplit: Record<string, number> = {};
  const counts = enumeratePlans(ctx, POLICY, (p) => (bySplit[splitOf(p)] = (bySplit[splitOf(p)] ?? 0) + 1));
  t.is(counts.considered, 29 * 5 * 3 * 9);
  // 8 splits Megatron-Core accepts: pp 1; pp 2 even, both slots (3 a rank), (1, 3), (3, 1); pp 2 vpp 2 even (1 a chunk);
  // pp 2 vpp 3 with both slots (the first and last chunks build no block); pp 4 even. The other 21 refuse 5 · 3 · 9 each.
  t.is(counts.byRule["the pipeline split: layers (+ slots) divisible by pp, each rank's by vpp; vpp 1 without pp (TC, ARGS)"], 21 * 135);
  // pp 1: every (tp, etp, ep) but etp 4 · ep 4; the micro-batch divides 8 / dp = tp sequences: 3·1 + 6·2 + 5·3 = 30
  // pp 2 (4 splits): ep · etp ≤ 4; dp = 4 / tp: 3·2 + 5·3 + 4·4 = 37 each
  // pp 2 interleaved (2 splits): micro-batches 8 / (mb · dp) must be even: 3·1 + 5·2 + 4·3 = 25 each
  // pp 4: tp ≤ 2, ep · etp ≤ 2: 2·3 + 3·4 = 18
  t.deepEqual(bySplit, {
    'pp 1 vpp 1 first 0 last 0': 30, 'pp 2 vpp 1 first 0 last 0': 37, 'pp 2 vpp 1 first 0 last 0 +embedding +loss': 37,
    'pp 2 vpp 1 first 1 last 3': 37, 'pp 2 vpp 1 first 3 last 1': 37, 'pp 2 vpp 2 first 0 last 0': 25,
    'pp 2 vpp 3 first 0 last 0 +embedding +loss': 25, 'pp 4 vpp 1 first 0 last 0': 18,
  });
  t.is(counts.refused, counts.considered - 246);
  t.like(counts.byRule, {
    'tp · pp divides the GPUs (PS)': 2 * 27, // pp 4 with tp 4: two (tp, etp) rows × 3 ep × 9 micro-batches
    'ep · pp divides the GPUs (PS)': 3 * 9, // pp 4, ep 4, tp 1 or 2
    'with vpp, micro-batches a multiple of pp (SCHED: groups of pp)': 2 * (3 + 5 + 4), // one odd count per tp, per split
  });
});

test('every plan the search accepts is a valid config (its own rules between keys)', (t) => {
  const ctx = small();
  let plans = 0;
  enumeratePlans(ctx, new Map(), (plan) => {
    plans++;
    t.notThrows(() => validateConfig({ ...ctx.config, plan }), JSON.stringify(plan));
  });
  t.true(plans > 246 * 10, `${plans} plans with every policy`);
});

test('uneven splits: both ends set, lighter than the middle ranks at the even share rounded up; the two extremes', (t) => {
  t.deepEqual(unevenSplits(61, 16, 1), [[1, 4], [4, 1]]); // middle 4 a rank: first + last = 61 − 14·4 = 5
  t.deepEqual(unevenSplits(61, 2, 1), [[30, 31], [31, 30]]); // no middle rank: as balanced as it goes
  t.deepEqual(unevenSplits(94, 8, 2), [[10, 12], [12, 10]]); // middle 12 (a multiple of vpp 2): ends 22, even each
  t.deepEqual(unevenSplits(32, 4, 1), []); // 8 a rank evenly: only first = last = 8, the even split itself
  t.deepEqual(unevenSplits(61, 16, 2), []); // middle 4 a rank: first + last = 5 cannot be two multiples of 2
});

test('--space narrows a dimension; --set and --megatron-args pin what they name; extra rows only when narrowed', (t) => {
  const ctx = small();
  const values = (narrow: Map<string, unknown[]>, name: string) =>
    dimensionValues(ctx, narrow).find((l) => l.dim.name === name)!.values;
  t.deepEqual(values(parseSpace(['plan.tp=1,4']), 'tensor'), [{ tp: 1, etp: 1 }, { tp: 4, etp: 4 }, { tp: 4, etp: 1 }]);
  t.deepEqual(values(new Map(), 'dispatcher').map((v) => v.dispatch_fwd_dtype), ['bf16', 'bf16', 'bf16']);
  t.deepEqual(values(parseSpace(['plan.dispatch_fwd_dtype=mxfp8']), 'dispatcher'), [{ dispatcher: 'flex', dispatch_fwd_dtype: 'mxfp8' }]);
  t.deepEqual(values(parseSpace(['plan.recompute_modules=[core_attn],[layernorm,moe_act]']), 'recompute'),
    [{ recompute: 'selective', recompute_modules: ['layernorm', 'moe_act'] }, { recompute: 'selective', recompute_modules: ['core_attn'] }]);
  t.deepEqual(values(parseSpace(['plan.decoder_first_pipeline_num_layers=1', 'plan.pp=2', 'plan.vpp=1']), 'pipeline')
    .map((v) => [v.decoder_first_pipeline_num_layers, v.decoder_last_pipeline_num_layers]), [[1, 3], [1, 0]]);
  t.deepEqual(pinnedKeys(['plan.tp=2', 'moe.capacity_factor=2', 'plan.global_batch=16'], '--bf16 --pipeline-model-parallel-size 2 '
    + '--use-distributed-optimizer --overlap-moe-expert-parallel-comm').sort(),
  ['plan.overlap', 'plan.pp', 'plan.precision', 'plan.shard', 'plan.tp']);
  const pinned = narrowing(new Map(), ['plan.tp'], { ...ctx.config.plan, tp: 2 });
  t.deepEqual(values(pinned, 'tensor'), [{ tp: 2, etp: 2 }, { tp: 2, etp: 1 }]);
});

test('--space refusals: one line naming the key, the rule and the value', (t) => {
  const refused = (specs: string[]) => t.throws(() => parseSpace(specs))?.message;
  t.is(refused(['plan.tpp=1,2']), 'config error: --space must name a searched plan key: plan.tp|plan.etp|plan.cp|plan.ep|'
    + 'plan.micro_batch|plan.pp|plan.vpp|plan.decoder_first_pipeline_num_layers|plan.decoder_last_pipeline_num_layers|'
    + 'plan.account_for_embedding_in_pipeline_split|plan.account_for_loss_in_pipeline_split|plan.shard|plan.recompute|'
    + 'plan.recompute_modules|plan.precision|plan.dispatch|plan.redundant_experts|plan.overlap|plan.dispatcher|plan.dispatch_fwd_dtype '
    + '(got "plan.tpp")');
  t.is(refused(['plan.shard=none,zero3']), 'config error: --space plan.shard must be one of none|optimizer|full (got "zero3")');
  t.is(refused(['plan.tp=0']), 'config error: --space plan.tp must be >= 1 (got 0)');
  t.is(refused(['plan.tp']), 'config error: --space must look like plan.key=v1,v2,... (got "plan.tp")');
  t.is(refused(['plan.tp=1', 'plan.tp=2']), 'config error: --space plan.tp must be given once (got it twice)');
  t.is(t.throws(() => narrowing(parseSpace(['plan.tp=1,2']), ['plan.tp'], small().config.plan))?.message,
    'config error: --space plan.tp must not narrow a key --set or --megatron-args pins (got [1,2])');
});
