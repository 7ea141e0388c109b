import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Config } from '../../core/config/defaults.js';
import { resolveConfig } from '../../core/config/load.js';
import { train } from '../../training/trainer.js';
import type { Cluster } from '../../sim/cluster.js';
import { fitMachine, machineCluster, type MachineConstants, type MeasuredRun } from '../../sim/fit.js';
import { project } from '../../sim/project.js';
import { runWorkload } from '../../sim/workload.js';
import { maxOf, minOf } from '../../core/util/extremes.js';

/** A held-out run: measured here, and predicted by the fitted model from its recorded routing. */
export interface CalibrationCase {
  layout: 'spmd';
  devices: number;
  d_model: number;
  /** null when the case could not run (see `failed`) */
  measured_step_ms: number | null;
  predicted_step_ms: number | null;
  /** |predicted − measured| / measured */
  error: number | null;
  /** the run's mean step in each round (measured_step_ms is the least): how noisy this machine was */
  rounds_ms: number[];
  /** why the case could not run, when it could not */
  failed?: string;
}

/**
 * What `--calibrate` runs: the model sizes fitted and held out, device counts, steps and rounds (the defaults
 * below; tests shrink them).
 */
export interface CalibrationPlan {
  fit: number[];
  heldOut: number[];
  devices: number[];
  batches: number[];
  steps: number;
  skip: number;
  rounds: number;
  /** extra `key=value` sets for the held-out runs */
  heldOutSets?: string[];
}

export interface Calibration {
  cluster: Cluster;
  constants: MachineConstants;
  /** every run fitted: its shape and its measured ms per step */
  fit: { devices: number; d_model: number; batch_size: number; measured_ms: number }[];
  cases: CalibrationCase[];
  /** over the cases that ran; null when none did */
  max_error: number | null;
  file: string;
}

/** Calibration could not fit or could not run a case: exit 1. */
export class CalibrationError extends Error {
  override name = 'CalibrationError';
}

/**
 * The model sizes fitted and the held-out ones (a quick-start-sized model, every Switch layer on 4
 * experts), at one, two and four device threads; per run `steps` steps, the first `skip` warm-up (new
 * threads compile their code), the mean of the rest the run's step time; every run `rounds` times.
 */
export const DEFAULT_PLAN: CalibrationPlan = { fit: [64, 128], heldOut: [96, 160], devices: [1, 2, 4],
  batches: [4, 16], steps: 16, skip: 6, rounds: 4 };

const base = (plan: CalibrationPlan, d: number, ...sets: string[]) => resolveConfig({
  sets: ['data.dataset=moby-dick', 'data.seq_len=64', 'data.batch_size=16', `model.d_model=${d}`, 'model.n_heads=4',
    `model.d_ff=${2 * d}`, 'model.n_layers=2', 'moe.n_experts=4', 'parallel.layout=spmd', 'parallel.transport=threads',
    'train.eval_every=0', 'train.checkpoint_every=0', 'train.log_every=1', 'train.eval_batches=1',
    `train.steps=${plan.steps}`, ...sets],
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

type Timed = MeasuredRun & Planned & { rounds_ms: number[]; failed?: string };

/**
 * Trains every config `rounds` times, the configs taking turns (this machine has slow spells of minutes:
 * taking turns spreads them over fit and held-out runs alike); per run the mean step after the warm-up,
 * per config its fastest run (interference only slows a run down), with that run's routing. A run that
 * fails is recorded with its error and the others go on.
 */
async function timeAll(plan: CalibrationPlan, runs: Planned[], dir: string,
  log: (l: string) => void): Promise<Timed[]> {
  const best: Timed[] = runs.map((p) => ({ ...p, measured_ms: Infinity, workload: undefined as never, rounds_ms: [] }));
  for (let r = 0; r < plan.rounds; r++) {
    for (const [i, p] of runs.entries()) {
      if (best[i]!.failed) continue;
      const out = join(dir, `run-${i}-${r}`);
      try {
        await train({ config: p.config, name: 'calibrate', outDir: out });
        const w = runWorkload(out);
        const steps = w.steps.filter((s) => s.step > plan.skip);
        const measured = steps.reduce((a, s) => a + s.ms!, 0) / steps.length; // log_every 1: each step's own time
        if (!(measured > 0 && Number.isFinite(measured)))
          throw new Error(`no step time after ${plan.skip} warm-up steps (got ${measured})`);
        best[i]!.rounds_ms.push(measured);
        if (measured < best[i]!.measured_ms)
          Object.assign(best[i]!, { measured_ms: measured, workload: { ...w, steps } });
      } catch (e) {
        best[i]!.failed = (e as Error).message.split('\n')[0]!;
        log(`run d_model ${p.d_model}, batch ${p.batch_size}, ${p.devices} device${p.devices > 1 ? 's' : ''} ` +
          `failed: ${best[i]!.failed}`);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }
    log(`round ${r + 1} of ${plan.rounds}: ${runs.length} runs`);
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
export async function calibrate(opts: { log?: (l: string) => void; out?: string;
  plan?: CalibrationPlan } = {}): Promise<Calibration> {
  const log = opts.log ?? (() => {});
  const P = opts.plan ?? DEFAULT_PLAN;
  const work = mkdtempSync(join(tmpdir(), 'switch-sim-calibrate-'));
  try {
    // first runs in a process are slower
    await train({ config: base(P, P.fit[0]!, 'parallel.devices=1', 'train.steps=4'), name: 'warm-up',
      outDir: join(work, 'warm-up') });
    const plan = (d: number, devices: number, batch_size = 16, sets: string[] = []): Planned =>
      ({ d_model: d, devices, batch_size,
        config: base(P, d, `parallel.devices=${devices}`, `data.batch_size=${batch_size}`, ...sets) });
    const fitPlan = P.devices.flatMap((D) => P.fit.flatMap((d) => P.batches.map((B) => plan(d, D, B))));
    const heldPlan = P.heldOut.flatMap((d) => P.devices.map((D) => plan(d, D, 16, P.heldOutSets)));
    const timed = await timeAll(P, [...fitPlan, ...heldPlan], work, log);
    const [fitted, held] = [timed.slice(0, fitPlan.length), timed.slice(fitPlan.length)];
    const brokenFit = fitted.filter((r) => r.failed);
    if (brokenFit.length > 0)
      throw new CalibrationError(`${brokenFit.length} of ${fitted.length} fitting runs could not run (first: d_model ` +
        `${brokenFit[0]!.d_model}, ${brokenFit[0]!.devices} devices: ${brokenFit[0]!.failed}); nothing was fitted`);
    const rounds = (r: { rounds_ms: number[] }) => `(rounds: ${r.rounds_ms.map((x) => x.toFixed(1)).join(', ')})`;
    for (const r of fitted)
      log(`fit d_model ${r.d_model}, batch ${r.batch_size}, ${r.devices} device${r.devices > 1 ? 's' : ''}: ` +
        `${r.measured_ms.toFixed(1)} ms a step ${rounds(r)}`);
    const constants = fitMachine(fitted, { cores: availableParallelism(), copy_gbps: copyGbps() });
    const eff = constants.parallel_efficiency.map(([n, e]) => `${(100 * e).toFixed(0)}% with ${n}`).join(', ');
    const ex = constants.exchange_overhead_us.map(([n, x]) => `${(x / 1000).toFixed(2)} ms with ${n}`).join(', ');
    log(`fitted: ${(constants.block_overhead_us / 1000).toFixed(2)} ms per block + bytes at ` +
      `${constants.memory_gbps.toFixed(2)} GB/s + FLOPs at ${constants.peak_gflops.toFixed(2)} GFLOP/s; ` +
      `threads at ${eff} devices of their speed alone; ${ex} devices per exchange`);
    const cases: CalibrationCase[] = held.map((r) => {
      if (r.failed)
        return { layout: 'spmd', devices: r.devices, d_model: r.d_model, measured_step_ms: null,
          predicted_step_ms: null, error: null, rounds_ms: r.rounds_ms, failed: r.failed };
      const predicted = project(machineCluster(constants, r.devices), r.workload).step_ms;
      log(`held out d_model ${r.d_model}, ${r.devices} device${r.devices > 1 ? 's' : ''}: measured ` +
        `${r.measured_ms.toFixed(1)} ms ${rounds(r)}, predicted ${predicted.toFixed(1)} ms`);
      return {
        layout: 'spmd', devices: r.devices, d_model: r.d_model, measured_step_ms: r.measured_ms,
        predicted_step_ms: predicted, error: Math.abs(predicted - r.measured_ms) / r.measured_ms,
        rounds_ms: r.rounds_ms,
      };
    });
    const cluster = machineCluster(constants);
    mkdirSync(opts.out ?? 'configs/clusters', { recursive: true });
    const file = join(opts.out ?? 'configs/clusters', 'this-machine.yaml');
    const day = new Date().toISOString().slice(0, 10);
    const header = `# Fitted by \`switch-sim simulate --calibrate\` on ${day} (${availableParallelism()} ` +
      `cores): see src/sim/fit.ts.\n` +
      '# simulate projects a run (or config) here with its own parallel.devices threads (gpus_per_node ' +
      'is for --collective);\n' +
      '# other device counts: --vary cluster.gpus_per_node=1,2,4 (a run) or --vary ' +
      'parallel.devices=1,2,4 (a config).\n';
    writeFileSync(file, `${header}${YAML.stringify(cluster)}`);
    const errors = cases.flatMap((c) => (c.error === null ? [] : [c.error]));
    return {
      cluster, constants, cases, max_error: errors.length > 0 ? maxOf(errors) : null, file,
      fit: fitted.map((r) => ({ devices: r.devices, d_model: r.d_model, batch_size: r.batch_size,
        measured_ms: r.measured_ms })),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Every held-out case ran, or CalibrationError naming those that did not. */
export function assertCalibrated(c: Calibration): void {
  const failed = c.cases.filter((x) => x.failed);
  if (failed.length > 0)
    throw new CalibrationError(`${failed.length} of ${c.cases.length} held-out cases could not run (first: d_model ` +
      `${failed[0]!.d_model}, ${failed[0]!.devices} devices: ${failed[0]!.failed})`);
}

export function calibrationTable(c: Calibration): string {
  const rows = c.cases.map((x) =>
    `${x.layout.padEnd(7)} ${String(x.devices).padStart(7)} ${String(x.d_model).padStart(7)} ` + (x.failed
      ? `  could not run: ${x.failed}`
      : `${x.measured_step_ms!.toFixed(1).padStart(12)} ${x.predicted_step_ms!.toFixed(1).padStart(13)} ` +
        `${(100 * x.error!).toFixed(1).padStart(6)}%   ` +
        `${minOf(x.rounds_ms).toFixed(0)}–${maxOf(x.rounds_ms).toFixed(0)}`));
  const max = c.max_error === null ? 'no case ran' : `max error ${(100 * c.max_error).toFixed(1)}%`;
  return `layout  devices d_model measured ms predicted ms  error   rounds ms\n` +
    `${rows.join('\n')}\n${max}; wrote ${c.file}\n`;
}
