import test from 'ava';
import { ConfigError } from '../src/core/config/errors.js';
import { resolveConfig } from '../src/core/config/load.js';
import { loadCluster } from '../src/sim/cluster.js';
import { valueBytes } from '../src/sim/compute.js';
import { resolveLayout } from '../src/sim/layout.js';
import { memoryUse } from '../src/sim/memory.js';
import { memoryBound } from '../src/sim/search/bound.js';
import { searchContext, type Plan, type SearchContext } from '../src/sim/search/context.js';
import { enumeratePlans } from '../src/sim/search/enumerate.js';
import { searchPlans } from '../src/sim/search/search.js';
import { uniformWorkload } from '../src/sim/workload.js';

// The memory bound prunes plans before they are projected: it must never exceed what the full memory model
// (memory.ts, the figure a projection reports) says, or the search would drop a plan that fits.

const MODEL = (name: string) => new URL(`../configs/models/${name}.yaml`, import.meta.url).pathname;
const CLUSTER = (name: string) => loadCluster(new URL(`../configs/clusters/${name}.yaml`, import.meta.url).pathname);

/** Every `every`-th plan the rules accept: its bound and the full model's figure (plans the layout refuses left out). */
function pairs(ctx: SearchContext, every: number): { plan: Plan; bound: number; full: number }[] {
  const bound = memoryBound(ctx);
  const out: { plan: Plan; bound: number; full: number }[] = [];
  let i = 0;
  enumeratePlans(ctx, new Map(), (plan) => {
    if (i++ % every !== 0) return;
    const config = { ...ctx.config, plan };
    try {
      const L = resolveLayout(config, ctx.cluster, ctx.vocab);
      const full = memoryUse(config, L, valueBytes(ctx.cluster), L.tokensPerGpu * config.moe.top_k).total_gb;
      out.push({ plan, bound: bound(plan), full });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
    }
  });
  return out;
}

const SMALL = ['model.n_layers=4', 'model.n_heads=4', 'model.d_model=64', 'model.d_ff=128', 'moe.n_experts=4', 'data.seq_len=64',
  'data.batch_size=8', 'parallel.devices=4', 'plan.global_batch=8', 'model.vocab_size=1000'];

for (const [name, config, cluster, every] of [
  ['the small model on 8 GPUs, every plan', resolveConfig({ sets: SMALL }).config, CLUSTER('8xh100'), 1],
  ['Mixtral-8x7B on 512 GPUs, every 5th plan', resolveConfig({ file: MODEL('mixtral-8x7b') }).config, CLUSTER('64x8xh100'), 5],
  ['DeepSeek-V3 on 2,048 GPUs, every 10th plan', resolveConfig({ file: MODEL('deepseek-v3') }).config, CLUSTER('256x8xh800'), 10],
  ['Qwen3-30B-A3B on 16 GPUs, every 5th plan', resolveConfig({ file: MODEL('qwen3-30b-a3b') }).config, CLUSTER('2x8xh100'), 5],
] as const) {
  test(`the bound never exceeds the full memory model: ${name}`, (t) => {
    const ctx = searchContext(config, cluster, 65);
    const checked = pairs(ctx, every);
    t.true(checked.length > 100, `${checked.length} plans checked`);
    for (const { plan, bound, full } of checked) t.true(bound <= full * (1 + 1e-12), `${bound} > ${full} GB: ${JSON.stringify(plan)}`);
    // and it is no empty bound: on average it holds a fair share of the full figure
    const share = checked.reduce((a, x) => a + x.bound / x.full, 0) / checked.length;
    t.true(share > 0.3, `the bound is ${share.toFixed(2)} of the full figure on average`);
  });
}

test('the bound prunes: DeepSeek-V3 on 2,048 GPUs of 80 GB drops plans before projecting, and none it drops would fit', async (t) => {
  const config = resolveConfig({ file: MODEL('deepseek-v3') }).config;
  const cluster = CLUSTER('256x8xh800');
  // one micro-batch layout, every policy: small enough to project here
  const narrow = new Map<string, unknown[]>([['plan.pp', [16]], ['plan.tp', [1]], ['plan.micro_batch', [1]], ['plan.ep', [8, 64]],
    ['plan.dispatcher', ['alltoall']]]);
  const r = await searchPlans(cluster, uniformWorkload(config), narrow, { threads: 1 });
  t.true(r.pruned > 0, `${r.pruned} pruned`);
  const ctx = searchContext(config, cluster, 65);
  const bound = memoryBound(ctx);
  let dropped = 0;
  enumeratePlans(ctx, narrow, (plan) => {
    if (bound(plan) <= ctx.memoryGb!) return;
    dropped++;
    const full = { ...config, plan };
    const L = resolveLayout(full, cluster, 65);
    t.true(memoryUse(full, L, valueBytes(cluster), L.tokensPerGpu * config.moe.top_k).total_gb > ctx.memoryGb!);
  });
  // the search counts a pruned choice's every plan below it, some of which a later rule would refuse too
  t.true(dropped > 0 && r.pruned >= dropped, `${dropped} dropped, ${r.pruned} pruned`);
});
