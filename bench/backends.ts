/**
 * Device backends on this machine, in one run: the probe (`switch-sim backends`: matmul and expert
 * GFLOP/s, upload/download GB/s) and a short training run of configs/tiny-shakespeare.yaml (or
 * --config FILE) with two device threads on each available backend, tokens/s and the devices' share.
 *   npx tsx bench/backends.ts [--data PATH] [--config FILE] [--steps N] [--out FILE.json]
 * On a machine with a real GPU, scripts/bench-gpu.sh runs this and writes the same table.
 */
import { writeFileSync } from 'node:fs';
import { PROBED, probeInChild, type BackendProbe } from '../src/runtime/devices/probe.js';
import type { LayerStats } from '../src/runtime/coordinator/layer-stats.js';
import { arg, benchConfig, timedTrain } from './common.js';

const steps = arg('steps', 12);
const outIdx = process.argv.indexOf('--out');
const probes: BackendProbe[] = [];
for (const b of PROBED) probes.push(await probeInChild(b));
const fmt = (x: number | undefined, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));
console.log(`probe at the expert's shape (${probes[0]!.shape.n} × ${probes[0]!.shape.d} × ${probes[0]!.shape.d_ff}):`);
console.log(`${'backend'.padEnd(11)} ${'matmul GFLOP/s'.padStart(14)} ${'expert GFLOP/s'.padStart(14)} ${'up GB/s'.padStart(8)} ${'down GB/s'.padStart(9)}  adapter / why not`);
for (const p of probes) console.log(`${p.backend.padEnd(11)} ${fmt(p.matmul_gflops).padStart(14)} ${fmt(p.expert_gflops).padStart(14)} ${fmt(p.upload_gbps, 2).padStart(8)} ${fmt(p.download_gbps, 2).padStart(9)}  ${p.available ? p.adapter : p.error}`);

interface Run { backend: string; ms_per_step: number; tokens_per_s: number; device_compute_ms_per_step: number; wait_ms_per_step: number }
const runs: Run[] = [];
for (const p of probes.filter((x) => x.available && x.backend !== 'cpu')) {
  const config = benchConfig(steps, 'parallel.transport=threads', 'parallel.devices=2', `parallel.backend=${p.backend}`, 'train.log_every=1');
  const { msPerStep: ms, records: recs } = await timedTrain(config);
  const per = (f: (l: LayerStats) => number) => recs.reduce((a, r) => a + r.layers.reduce((x, l) => x + f(l), 0), 0) / recs.length;
  runs.push({
    backend: p.backend, ms_per_step: ms, tokens_per_s: (config.data.batch_size * config.data.seq_len) / (ms / 1000),
    device_compute_ms_per_step: per((l) => Math.max(...l.device_compute_ms)), wait_ms_per_step: per((l) => l.wait_ms),
  });
}
console.log(`\ntraining, ${steps} steps (the first 2 not counted), two device threads:`);
console.log(`${'backend'.padEnd(11)} ${'ms/step'.padStart(8)} ${'tokens/s'.padStart(9)} ${'slowest device compute ms/step'.padStart(31)} ${'coordinator waits ms/step'.padStart(26)}`);
for (const r of runs) console.log(`${r.backend.padEnd(11)} ${r.ms_per_step.toFixed(0).padStart(8)} ${r.tokens_per_s.toFixed(0).padStart(9)} ${r.device_compute_ms_per_step.toFixed(1).padStart(31)} ${r.wait_ms_per_step.toFixed(1).padStart(26)}`);
if (outIdx >= 0) writeFileSync(process.argv[outIdx + 1]!, `${JSON.stringify({ probes, runs }, null, 1)}\n`);
