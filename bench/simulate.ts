/**
 * How fast `simulate` projects: a 1,000-step run logged every 25 steps (40 recorded steps) of
 * configs/tiny-shakespeare.yaml with skewed routing, onto each shipped cluster, flat and hierarchical.
 *   npx tsx bench/simulate.ts
 */
import { resolveConfig } from '../src/config/load.js';
import { loadCluster } from '../src/sim/cluster.js';
import { project } from '../src/sim/project.js';
import { uniformWorkload, type Workload } from '../src/sim/workload.js';

const config = resolveConfig({ file: new URL('../configs/tiny-shakespeare.yaml', import.meta.url).pathname }).config;
const base = uniformWorkload(config);
const S = (config.data.batch_size * config.data.seq_len) / config.parallel.devices;
// 40 logged steps, each group sending a different skewed share to each expert
const steps = Array.from({ length: 40 }, (_, i) => ({
  step: 25 * (i + 1),
  layers: base.steps[0]!.layers.map((_, l) => ({ routed: base.steps[0]!.layers[0]!.routed.map((row, g) => row.map((__, e) => S * (0.1 + ((i + l + g + e) % 4) * 0.1)) ) })),
}));
const workload: Workload = { ...base, source: 'run', steps };
console.log('cluster              all-to-all     GPUs   ms to project 40 steps   projected step ms');
for (const file of ['8xh100', '8xa100', '2x8xh100', '64x8xh100']) {
  const cluster = loadCluster(new URL(`../configs/clusters/${file}.yaml`, import.meta.url).pathname);
  for (const a2a of ['flat', 'hierarchical'] as const) {
    project({ ...cluster, all_to_all: a2a }, workload); // warm-up
    const t = performance.now();
    const p = project({ ...cluster, all_to_all: a2a }, workload);
    const ms = performance.now() - t;
    console.log(`${file.padEnd(20)} ${a2a.padEnd(13)} ${String(p.gpus).padStart(5)} ${ms.toFixed(1).padStart(24)} ${p.step_ms.toFixed(3).padStart(19)}`);
  }
}
