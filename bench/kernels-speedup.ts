/**
 * parallel.kernels fused against tfjs on one config, interleaved (tfjs, fused, tfjs, fused, …) so that
 * other load on the machine falls on both alike: per run, wall ms/step and the process's CPU ms/step
 * (user + system, every thread); the median and the best (least disturbed) run of each, tokens/s from the wall times.
 *   npx tsx bench/kernels-speedup.ts [--config FILE] [--data PATH] [--steps N] [--rounds R] [--transport local|threads]
 *     [--layout coordinator|spmd] [--devices D]
 * The first 2 steps of each run are warm-up and not counted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Config } from '../src/core/config/defaults.js';
import { train } from '../src/training/trainer.js';
import { arg, benchConfig, configFile } from './common.js';

const flag = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const steps = arg('steps', 12);
const rounds = arg('rounds', 3);
const skip = 2;
const sets = [`parallel.transport=${flag('transport', 'local')}`, `parallel.layout=${flag('layout', 'coordinator')}`, `parallel.devices=${arg('devices', 2)}`];

/** One timed run: wall and CPU ms per counted step. */
async function run(config: Config): Promise<{ wall: number; cpu: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'switch-sim-kernels-'));
  let t0 = 0, c0 = 0, n = 0;
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let wall = 0, cpu = 0;
  try {
    await train({
      config, name: 'bench', outDir: dir, onStep: (s) => {
        const [t, c] = [performance.now(), cpuMs()];
        if (s.step > skip) {
          wall += t - t0;
          cpu += c - c0;
          n++;
        }
        [t0, c0] = [t, c];
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { wall: wall / n, cpu: cpu / n };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const best = (xs: number[]) => Math.min(...xs);
const tps = (ms: number) => (tokens / (ms / 1000)).toFixed(0);
const results: Record<string, { wall: number[]; cpu: number[] }> = { tfjs: { wall: [], cpu: [] }, fused: { wall: [], cpu: [] } };
const first = benchConfig(steps, ...sets);
const tokens = first.data.batch_size * first.data.seq_len;
for (let r = 0; r < rounds; r++) {
  for (const kernels of ['tfjs', 'fused'] as const) {
    const got = await run(benchConfig(steps, ...sets, `parallel.kernels=${kernels}`));
    results[kernels]!.wall.push(got.wall);
    results[kernels]!.cpu.push(got.cpu);
    console.log(`round ${r + 1} ${kernels}: ${got.wall.toFixed(0)} ms/step wall, ${got.cpu.toFixed(0)} ms/step CPU`);
  }
}
const p = first.parallel;
console.log(`${basename(configFile(), '.yaml')} layout=${p.layout} transport=${p.transport} devices=${p.devices}, ${steps - skip} steps × ${rounds} rounds:`);
console.log('| kernels | wall ms/step (median, best) | tokens/s (median, best) | CPU ms/step (median, best) |');
console.log('|---|---:|---:|---:|');
for (const [k, v] of Object.entries(results)) {
  const [mw, bw] = [median(v.wall), best(v.wall)];
  console.log(`| ${k} | ${mw.toFixed(0)}, ${bw.toFixed(0)} | ${tps(mw)}, ${tps(bw)} | ${median(v.cpu).toFixed(0)}, ${best(v.cpu).toFixed(0)} |`);
}
const ratio = (f: (xs: number[]) => number, key: 'wall' | 'cpu') => (f(results.tfjs![key]) / f(results.fused![key])).toFixed(2);
console.log(`fused speed-up: wall ${ratio(median, 'wall')}× (median), ${ratio(best, 'wall')}× (best); `
  + `CPU ${ratio(median, 'cpu')}×, ${ratio(best, 'cpu')}×`);
