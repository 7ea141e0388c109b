import test from 'ava';
import { resolveConfig } from '../src/core/config/load.js';
import { loadCluster, type Cluster } from '../src/sim/cluster.js';
import { resolveLayout } from '../src/sim/layout.js';
import { project } from '../src/sim/project.js';
import { layerTraffic } from '../src/sim/traffic.js';
import { uniformWorkload, type Workload } from '../src/sim/workload.js';

// A plan search projects tens of thousands of plans, so the projection computes alike things once: alike Switch
// layers and blocks once a projection (stage.ts), an exchange once for every plan that has it, alike EP groups and
// blocks of GPUs once (traffic.ts). Each must give the numbers of computing everything: held here against the same
// inputs as separate objects, on a cluster object of their own (which no cache has seen).

const MODEL = (name: string) => new URL(`../configs/models/${name}.yaml`, import.meta.url).pathname;
const CLUSTER = (name: string) => new URL(`../configs/clusters/${name}.yaml`, import.meta.url).pathname;
const fresh = (c: Cluster): Cluster => structuredClone(c);
const SPLIT = ['plan.decoder_first_pipeline_num_layers=0', 'plan.decoder_last_pipeline_num_layers=0',
  'plan.account_for_embedding_in_pipeline_split=false', 'plan.account_for_loss_in_pipeline_split=false'];

test('an exchange computed once per EP block (flex, allgather) or per alike EP group (alltoall) is every GPU\'s own', (t) => {
  const cluster = loadCluster(CLUSTER('256x8xh800'));
  const row = Array.from({ length: 256 }, (_, e) => 1 + ((e * 7) % 11)); // uneven: every expert its own count
  let compared = 0;
  for (const plan of [['plan.pp=2', 'plan.ep=64'], ['plan.pp=16', 'plan.ep=64', 'plan.tp=2', 'plan.etp=2'],
    ['plan.pp=4', 'plan.ep=256', 'plan.tp=4', 'plan.etp=1'], ['plan.pp=8', 'plan.ep=4', 'plan.tp=1']]) {
    const L = resolveLayout(resolveConfig({ file: MODEL('deepseek-v3'), sets: [...plan, ...SPLIT] }).config, cluster, 65);
    for (const dispatcher of ['flex', 'allgather', 'alltoall'] as const) {
      const copies = { intra: 1, inter: 0.5, dispatcher };
      const once = layerTraffic(cluster, L, () => row, 14336, copies);
      // a new row list for every GPU and a cluster no cache has seen: nothing alike, everything computed
      const every = layerTraffic(fresh(cluster), L, () => [...row], 14336, copies);
      t.is(JSON.stringify(once), JSON.stringify(every), `${plan.join(' ')} ${dispatcher}`);
      compared++;
    }
  }
  t.is(compared, 12);
});

/** The workload with every Switch layer's load an object of its own (nothing for stage.ts to share) */
const apart = (w: Workload): Workload => ({ ...w, steps: w.steps.map((s) => ({ ...s, layers: s.layers.map((l) => structuredClone(l)) })) });
const shared = (w: Workload): Workload => ({ ...w, steps: w.steps.map((s) => ({ ...s, layers: s.layers.map(() => s.layers[0]!) })) });

test('alike blocks and Switch layers computed once a projection give the numbers of computing each one', (t) => {
  for (const [model, on, sets] of [
    ['deepseek-v3', '256x8xh800', ['plan.pp=8', 'plan.ep=32', 'plan.tp=2', 'plan.etp=1', 'plan.shard=full', 'plan.dispatcher=flex']],
    ['deepseek-v3', '256x8xh800', ['plan.pp=2', 'plan.ep=64', 'plan.recompute=selective', 'plan.recompute_modules=[layernorm,moe_act]',
      'plan.dispatcher=allgather', 'plan.dispatch_fwd_dtype=bf16', 'plan.overlap=none']],
    ['mixtral-8x7b', '64x8xh100', ['plan.pp=4', 'plan.vpp=2', 'plan.tp=2', 'plan.ep=8', 'plan.etp=1']],
    ['qwen3-30b-a3b', '2x8xh100', ['plan.tp=2', 'plan.shard=full', 'plan.recompute=full']],
  ] as const) {
    const cluster = loadCluster(CLUSTER(on));
    const w = uniformWorkload(resolveConfig({ file: MODEL(model), sets: [...sets, ...(model === 'deepseek-v3' ? SPLIT : [])] }).config);
    const { detail: a, ...once } = project(cluster, shared(w));
    const { detail: b, ...each } = project(fresh(cluster), apart(w));
    t.deepEqual({ ...once, cluster: '' }, { ...each, cluster: '' }, `${model} ${sets.join(' ')}`);
    t.deepEqual(a?.stage.total_us, b?.stage.total_us);
  }
});
