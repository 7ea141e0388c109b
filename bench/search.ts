/**
 * How fast `simulate --search` goes: the whole default space of each shipped model on a cluster it suits, how many
 * plans that is (considered, refused, over the memory, projected), the wall time and the plans projected a
 * second (wall, and per CPU-second of this process and its threads: the figure that does not depend on what else the
 * machine runs).
 *   npx tsx bench/search.ts [--threads N] [--only deepseek-v3]
 */
import { resolveConfig } from '../src/core/config/load.js';
import { loadCluster } from '../src/sim/cluster.js';
import { defaultThreads, searchPlans } from '../src/sim/search/search.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { arg } from './common.js';

const path = (f: string) => new URL(`../${f}`, import.meta.url).pathname;
const threads = arg('threads', defaultThreads());
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const n = (x: number) => x.toLocaleString('en-US');

console.log(`threads: ${threads}`);
console.log(`${'model'.padEnd(15)} ${'cluster'.padEnd(12)} ${'GPUs'.padStart(5)} ${'considered'.padStart(16)} ${'refused'.padStart(16)} `
  + `${'over mem'.padStart(9)} ${'projected'.padStart(10)} ${'s'.padStart(7)} ${'plans/s'.padStart(8)} `
  + `${'plans/CPU-s'.padStart(11)}  best`);
for (const [model, on] of [['switch-base', '8xh100'], ['qwen3-30b-a3b', '2x8xh100'], ['mixtral-8x7b', '64x8xh100'],
  ['deepseek-v3', '256x8xh800']] as const) {
  if (only && only !== model) continue;
  const cluster = loadCluster(path(`configs/clusters/${on}.yaml`));
  const config = resolveConfig({ file: path(`configs/models/${model}.yaml`) }).config;
  const cpu = process.cpuUsage();
  const r = await searchPlans(cluster, uniformWorkload(config), new Map(), { threads });
  const used = process.cpuUsage(cpu);
  const cpuS = (used.user + used.system) / 1e6;
  const best = r.fitting[0];
  console.log(`${model.padEnd(15)} ${on.padEnd(12)} ${String(r.context.gpus).padStart(5)} ${n(r.considered).padStart(16)} `
    + `${n(r.refused).padStart(16)} ${n(r.pruned + r.over).padStart(9)} ${n(r.projected).padStart(10)} `
    + `${r.seconds.toFixed(1).padStart(7)} ${n(Math.round(r.projected / r.seconds)).padStart(8)} `
    + `${n(Math.round(r.projected / cpuS)).padStart(11)}  ${best ? `${best.step_ms.toFixed(1)} ms` : 'none fits'}`);
}
