import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Config } from '../config/defaults.js';
import { resolveConfig } from '../config/load.js';
import { train } from '../train/trainer.js';
import type { Cluster } from './cluster.js';
import { fitMachine, machineCluster, type MachineConstants, type MeasuredRun } from './fit.js';
import { project } from './project.js';
import { runWorkload } from './workload.js';
import { maxOf, minOf } from '../util/extremes.js';

/** A held-out run: measured here, and predicted by the fitted model from its recorded routing. */
export interface CalibrationCase {
  layout: 'spmd';
  devices: number;
  d_model: number;
  measured_step_ms: number;
  predicted_step_ms: number;
  /** |predicted − measured| / measured */
  error: number;
  /** the run's mean step in each round (measured_step_ms is the least): how noisy this machine was */
  rounds_ms: number[];
}

export interface Calibration {
  cluster: Cluster;
  constants: MachineConstants;
  /** every run fitted: its shape and its measured ms per step */
  fit: { devices: number; d_model: number; batch_size: number; measured_ms: number }[];
  cases: CalibrationCase[];
  max_error: number;
  file: string;
}

/** the model sizes fitted and the held-out ones: a quick-start-sized model, every Switch layer on 4 experts */
const FIT = [64, 128];
const HELD_OUT = [96, 160];
/** steps per run; the first SKIP are warm-up (new threads compile their code); the mean of the rest is the run's step time */
const STEPS = 16;
const SKIP = 6;
const ROUNDS = 4;

const base = (d: number, ...sets: string[]) => resolveConfig({
  sets: ['data.dataset=moby-dick', 'data.seq_len=64', 'data.batch_size=16', `model.d_model=${d}`, 'model.n_heads=4', `model.d_ff=${2 * d}`, 'model.n_layers=2',
    'moe.n_experts=4', 'parallel.layout=spmd', 'parallel.transport=threads', 'train.eval_every=0', 'train.checkpoint_every=0', 'train.log_every=1', 'train.eval_batches=1', `train.steps=${STEPS}`, ...sets],
}).config;

/** single-thread copy bandwidth (GB/s): what packing rows into slots and reading them back runs at */
function copyGbps(): number {
  const a = new Float32Array(1 << 20);
  const b = new Float32Array(1 << 20);
  let best = Infinity;
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    b.set(a);
    best = Math.min(best, performance.now() - t);
  }
  return a.byteLength / (best / 1000) / 1e9;
}

interface Planned {
  devices: number;
  d_model: number;
  batch_size: number;
  config: Config;
}

/**
 * Trains every config ROUNDS times, the configs taking turns (this machine has slow spells of minutes:
 * taking turns spreads them over fit and held-out runs alike); per run the mean step after the warm-up,
 * per config its fastest run (interference only slows a run down), with that run's routing.
 */
async function timeAll(plan: Planned[], dir: string, log: (l: string) => void): Promise<(MeasuredRun & Planned & { rounds_ms: number[] })[]> {
  const best: (MeasuredRun & Planned & { rounds_ms: number[] })[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, p] of plan.entries()) {
      const out = join(dir, `run-${i}-${r}`);
      await train({ config: p.config, name: 'calibrate', outDir: out });
      const w = runWorkload(out);
      const steps = w.steps.filter((s) => s.step > SKIP);
      const measured = steps.reduce((a, s) => a + s.ms!, 0) / steps.length; // log_every 1: each step's own time
      const rounds = [...(best[i]?.rounds_ms ?? []), measured];
      best[i] = !best[i] || measured < best[i]!.measured_ms ? { ...p, measured_ms: measured, workload: { ...w, steps }, rounds_ms: rounds } : { ...best[i]!, rounds_ms: rounds };
      rmSync(out, { recursive: true, force: true });
    }
    log(`round ${r + 1} of ${ROUNDS}: ${plan.length} runs`);
  }
  return best;
}

/**
 * `switch-sim simulate --calibrate`: fits configs/clusters/this-machine.yaml to this machine from whole
 * training steps of spmd runs (see fitMachine), then checks it on held-out runs:
 *  - fit: one, two and four device threads at two model sizes × two batch sizes (one thread: block cost,
 *    memory-bound rate, FLOP rate; two and four: parallel efficiency and exchange cost);
 *  - held out: D ∈ {1, 2, 4} at two model sizes not fitted, each predicted from its own recorded routing.
 * Every run is timed ROUNDS times, all taking turns.
 */
export async function calibrate(opts: { log?: (l: string) => void; out?: string } = {}): Promise<Calibration> {
  const log = opts.log ?? (() => {});
  const work = mkdtempSync(join(tmpdir(), 'switch-sim-calibrate-'));
  try {
    await train({ config: base(FIT[0]!, 'parallel.devices=1', 'train.steps=4'), name: 'warm-up', outDir: join(work, 'warm-up') }); // first runs in a process are slower
    const plan = (d: number, devices: number, batch_size = 16): Planned => ({ d_model: d, devices, batch_size, config: base(d, `parallel.devices=${devices}`, `data.batch_size=${batch_size}`) });
    const fitPlan = [1, 2, 4].flatMap((D) => FIT.flatMap((d) => [4, 16].map((B) => plan(d, D, B))));
    const heldPlan = HELD_OUT.flatMap((d) => [1, 2, 4].map((D) => plan(d, D)));
    const timed = await timeAll([...fitPlan, ...heldPlan], work, log);
    const [fitted, held] = [timed.slice(0, fitPlan.length), timed.slice(fitPlan.length)];
    const rounds = (r: { rounds_ms: number[] }) => `(rounds: ${r.rounds_ms.map((x) => x.toFixed(1)).join(', ')})`;
    for (const r of fitted) log(`fit d_model ${r.d_model}, batch ${r.batch_size}, ${r.devices} device${r.devices > 1 ? 's' : ''}: ${r.measured_ms.toFixed(1)} ms a step ${rounds(r)}`);
    const constants = fitMachine(fitted, { cores: availableParallelism(), copy_gbps: copyGbps() });
    const eff = constants.parallel_efficiency.map(([n, e]) => `${(100 * e).toFixed(0)}% with ${n}`).join(', ');
    const ex = constants.exchange_overhead_us.map(([n, x]) => `${(x / 1000).toFixed(2)} ms with ${n}`).join(', ');
    log(`fitted: ${(constants.block_overhead_us / 1000).toFixed(2)} ms per block + bytes at ${constants.memory_gbps.toFixed(2)} GB/s + FLOPs at ${constants.peak_gflops.toFixed(2)} GFLOP/s; ` +
      `threads at ${eff} devices of their speed alone; ${ex} devices per exchange`);
    const cases: CalibrationCase[] = held.map((r) => {
      const predicted = project(machineCluster(constants, r.devices), r.workload).step_ms;
      log(`held out d_model ${r.d_model}, ${r.devices} device${r.devices > 1 ? 's' : ''}: measured ${r.measured_ms.toFixed(1)} ms ${rounds(r)}, predicted ${predicted.toFixed(1)} ms`);
      return {
        layout: 'spmd', devices: r.devices, d_model: r.d_model, measured_step_ms: r.measured_ms, predicted_step_ms: predicted,
        error: Math.abs(predicted - r.measured_ms) / r.measured_ms, rounds_ms: r.rounds_ms,
      };
    });
    const cluster = machineCluster(constants);
    mkdirSync(opts.out ?? 'configs/clusters', { recursive: true });
    const file = join(opts.out ?? 'configs/clusters', 'this-machine.yaml');
    writeFileSync(file, `# Fitted by \`switch-sim simulate --calibrate\` on ${new Date().toISOString().slice(0, 10)} (${availableParallelism()} cores): see src/sim/fit.ts.\n${YAML.stringify(cluster)}`);
    return {
      cluster, constants, cases, max_error: maxOf(cases.map((c) => c.error)), file,
      fit: fitted.map((r) => ({ devices: r.devices, d_model: r.d_model, batch_size: r.batch_size, measured_ms: r.measured_ms })),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function calibrationTable(c: Calibration): string {
  const rows = c.cases.map((x) => `${x.layout.padEnd(7)} ${String(x.devices).padStart(7)} ${String(x.d_model).padStart(7)} ${x.measured_step_ms.toFixed(1).padStart(12)} ${x.predicted_step_ms.toFixed(1).padStart(13)} ${(100 * x.error).toFixed(1).padStart(6)}%   ${minOf(x.rounds_ms).toFixed(0)}–${maxOf(x.rounds_ms).toFixed(0)}`);
  return `layout  devices d_model measured ms predicted ms  error   rounds ms\n${rows.join('\n')}\nmax error ${(100 * c.max_error).toFixed(1)}%; wrote ${c.file}\n`;
}
