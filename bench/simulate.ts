/**
 * How fast `simulate` projects: (1) a 1,000-step run logged every 25 steps (40 recorded steps) of
 * configs/tiny-shakespeare.yaml with skewed routing, 16 sequences a GPU, onto each shipped H100/A100
 * cluster, flat and hierarchical; (2) each shipped model config on its own cluster.
 *   npx tsx bench/simulate.ts
 */
import { resolveConfig } from '../src/core/config/load.js';
import { gpuCount, loadCluster } from '../src/sim/cluster.js';
import { project } from '../src/sim/project.js';
import { uniformWorkload, type Workload } from '../src/sim/workload.js';

const path = (f: string) => new URL(`../${f}`, import.meta.url).pathname;
const time = (f: () => unknown) => {
  f(); // warm-up
  const t = performance.now();
  f();
  return performance.now() - t;
};
console.log('cluster              all-to-all     GPUs   ms to project 40 steps   projected step ms');
for (const file of ['8xh100', '8xa100', '2x8xh100', '64x8xh100']) {
  const cluster = loadCluster(path(`configs/clusters/${file}.yaml`));
  const config = resolveConfig({ file: path('configs/tiny-shakespeare.yaml'), sets: [`plan.global_batch=${16 * gpuCount(cluster)}`] }).config;
  const base = uniformWorkload(config);
  const S = (config.data.batch_size * config.data.seq_len) / config.parallel.devices;
  // 40 logged steps, each group sending a different skewed share to each expert
  const steps = Array.from({ length: 40 }, (_, i) => ({
    step: 25 * (i + 1),
    layers: base.steps[0]!.layers.map((_, l) => ({ routed: base.steps[0]!.layers[0]!.routed.map((row, g) => row.map((__, e) => S * (0.1 + ((i + l + g + e) % 4) * 0.1))) })),
  }));
  const workload: Workload = { ...base, source: 'run', steps };
  for (const a2a of ['flat', 'hierarchical'] as const) {
    let step = 0;
    const ms = time(() => (step = project({ ...cluster, all_to_all: a2a }, workload).step_ms));
    console.log(`${file.padEnd(20)} ${a2a.padEnd(13)} ${String(gpuCount(cluster)).padStart(5)} ${ms.toFixed(1).padStart(24)} ${step.toFixed(3).padStart(19)}`);
  }
}
console.log('\nmodel            cluster        ms to project   projected step ms');
for (const [model, on] of [['switch-base', '8xh100'], ['mixtral-8x7b', '64x8xh100'], ['qwen3-30b-a3b', '2x8xh100'], ['deepseek-v3', '256x8xh800']]) {
  const cluster = loadCluster(path(`configs/clusters/${on}.yaml`));
  const w = uniformWorkload(resolveConfig({ file: path(`configs/models/${model}.yaml`) }).config);
  let step = 0;
  const ms = time(() => (step = project(cluster, w).step_ms));
  console.log(`${model!.padEnd(16)} ${on!.padEnd(14)} ${ms.toFixed(1).padStart(13)} ${step.toFixed(1).padStart(19)}`);
}
