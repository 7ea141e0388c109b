import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Config } from '../config/defaults.js';
import { resolveConfig } from '../config/load.js';
import { train } from '../train/trainer.js';
import { validateCluster, type Cluster } from './cluster.js';
import { project } from './project.js';
import { runWorkload, type Workload } from './workload.js';

/** A held-out run: measured here, and predicted by the fitted model from its recorded routing. */
export interface CalibrationCase {
  layout: 'spmd';
  devices: number;
  d_model: number;
  measured_step_ms: number;
  predicted_step_ms: number;
  /** |predicted − measured| / measured */
  error: number;
}

export interface Calibration {
  cluster: Cluster;
  /** the fit's one-thread runs: FLOPs per step and the ms they took (less the parts modelled apart) */
  fit: { d_model: number; batch_size: number; flops: number; ms: number }[];
  cases: CalibrationCase[];
  max_error: number;
  file: string;
}

/** the model sizes fitted and the held-out ones: a quick-start-sized model, every Switch layer on 4 experts */
const FIT = [64, 128];
const HELD_OUT = [96, 160];
const STEPS = 16;
const SKIP = 4;
const ROUNDS = 2;

const base = (d: number, ...sets: string[]) => resolveConfig({
  sets: ['data.dataset=moby-dick', 'data.seq_len=64', 'data.batch_size=16', `model.d_model=${d}`, 'model.n_heads=4', `model.d_ff=${2 * d}`, 'model.n_layers=2',
    'moe.n_experts=4', 'parallel.layout=spmd', 'parallel.transport=threads', 'train.eval_every=0', 'train.checkpoint_every=0', 'train.log_every=1', 'train.eval_batches=1', ...sets],
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

interface Timed {
  measured: number;
  workload: Workload;
}

/**
 * Trains every config ROUNDS times, the configs taking turns (so that the machine's slow spells hit fit
 * and held-out runs alike); per config: per run the median step after the warm-up steps, then the
 * fastest run (on a shared machine, interference only slows a run down), with that run's routing.
 */
async function timeAll(configs: Config[], dir: string, log: (l: string) => void): Promise<Timed[]> {
  const best: (Timed | undefined)[] = configs.map(() => undefined);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, config] of configs.entries()) {
      const out = join(dir, `run-${i}-${r}`);
      await train({ config, name: 'calibrate', outDir: out });
      const w = runWorkload(out);
      const steps = w.steps.filter((s) => s.step > SKIP);
      const sorted = steps.map((s) => s.ms!).sort((a, b) => a - b); // log_every 1: each step's own time
      const measured = sorted[Math.floor(sorted.length / 2)]!;
      if (!best[i] || measured < best[i]!.measured) best[i] = { measured, workload: { ...w, steps } };
      rmSync(out, { recursive: true, force: true });
    }
    log(`round ${r + 1} of ${ROUNDS}: ${configs.length} runs`);
  }
  return best as Timed[];
}

/** Least squares for y = Σ a_k·x_k over rows [x_1, …, x_n, y]: the normal equations, by Gaussian elimination. */
export function leastSquares(rows: number[][]): number[] {
  const n = rows[0]!.length - 1;
  const A = Array.from({ length: n }, (_, i) => Array.from({ length: n + 1 }, (_, j) => rows.reduce((a, r) => a + r[i]! * r[j === n ? n : j]!, 0)));
  for (let c = 0; c < n; c++) {
    const p = A.slice(c).reduce((best, row, k) => (Math.abs(row[c]!) > Math.abs(A[best]![c]!) ? c + k : best), c);
    [A[c], A[p]] = [A[p]!, A[c]!];
    if (Math.abs(A[c]![c]!) < 1e-12) continue;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = A[r]![c]! / A[c]![c]!;
      for (let k = c; k <= n; k++) A[r]![k]! -= f * A[c]![k]!;
    }
  }
  return A.map((row, i) => (Math.abs(row[i]!) < 1e-12 ? 0 : row[n]! / row[i]!));
}

/** Least-squares line y = intercept + slope·x through the points. */
export function line(points: [number, number][]): { intercept: number; slope: number } {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  const sxx = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  const slope = sxx > 0 ? points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0) / sxx : my / mx;
  return { intercept: my - slope * mx, slope };
}


/**
 * `switch-sim simulate --calibrate`: fits configs/clusters/this-machine.yaml to this machine from whole
 * training steps (every run below twice, taking turns; per config the faster run's median of 12 steps after
 * 4 warm-up steps, unprofiled), then checks it on held-out runs.
 *  1. one device thread, two model sizes × two batch sizes: step = fixed + FLOPs / rate (least squares):
 *     the rate is the "GPU"'s peak, the fixed part (tfjs's per-op costs, messages, AdamW) a cost per block;
 *  2. two and four device threads at the same sizes: what the model with threads at full speed and free
 *     exchanges leaves unexplained = compute · (1/parallel_efficiency(D)) + exchanges · exchange_overhead
 *     (least squares): threads slow each other down (two cores, shared memory, V8's GC helpers), and every
 *     exchange costs barrier waits; more devices than cores take turns (compute × D / cores);
 *  3. held out: D ∈ {1, 2, 4} at two model sizes not fitted, each predicted from its own recorded routing.
 */
export async function calibrate(opts: { log?: (l: string) => void; out?: string } = {}): Promise<Calibration> {
  const log = opts.log ?? (() => {});
  const work = mkdtempSync(join(tmpdir(), 'switch-sim-calibrate-'));
  try {
    await train({ config: base(FIT[0]!, 'parallel.devices=1', 'train.steps=4'), name: 'warm-up', outDir: join(work, 'warm-up') }); // first runs in a process are slower
    const gbps = copyGbps();
    const make = (peakGflops: number, blockUs: number, parallelEfficiency: [number, number][], exchangeUs: number) => validateCluster({
      name: 'this-machine', nodes: 1, gpus_per_node: 1,
      gpu: {
        name: `${availableParallelism()}-core CPU, tfjs-wasm device threads`, tflops_bf16: peakGflops / 1000, tflops_fp32: peakGflops / 1000, hbm_gbps: 1e6,
        matmul_efficiency: [[1, 1]], block_overhead_us: blockUs, cores: availableParallelism(), parallel_efficiency: parallelEfficiency,
      },
      intra_node: { gbps, latency_us: 0 }, inter_node: { gbps, latency_us: 0 }, all_to_all: 'flat', message_efficiency: [[1, 1]], precision: 'fp32',
      exchange_overhead_us: exchangeUs,
    });
    // every run first, taking turns: one thread (fit), several threads (fit), held out
    const oneThread = FIT.flatMap((d) => [4, 16].map((B) => ({ d, B, config: base(d, 'parallel.devices=1', `data.batch_size=${B}`, `train.steps=${STEPS}`) })));
    const threads = FIT.flatMap((d) => [2, 4].map((D) => ({ d, D, config: base(d, `parallel.devices=${D}`, `train.steps=${STEPS}`) })));
    const heldOut = HELD_OUT.flatMap((d) => [1, 2, 4].map((D) => ({ d, D, config: base(d, `parallel.devices=${D}`, `train.steps=${STEPS}`) })));
    const timed = await timeAll([...oneThread, ...threads, ...heldOut].map((x) => x.config), work, log);
    const [t1, tD, tH] = [timed.slice(0, oneThread.length), timed.slice(oneThread.length, oneThread.length + threads.length), timed.slice(oneThread.length + threads.length)];
    // 1. one thread: at 1 GFLOP/s and no fixed costs, the model's compute ms is the GFLOPs; fit measured = fixed + GFLOPs / rate
    const unit = make(1, 0, [[1, 1]], 0);
    const fit: Calibration['fit'] = oneThread.map(({ d, B }, i) => {
      const p = project(unit, t1[i]!.workload);
      const compute = p.breakdown_ms.dense + p.breakdown_ms.experts;
      log(`fit d_model ${d}, batch ${B}, 1 device: ${t1[i]!.measured.toFixed(1)} ms a step for ${(compute / 1000).toFixed(3)} GFLOP`);
      return { d_model: d, batch_size: B, flops: compute * 1e6, ms: t1[i]!.measured - (p.step_ms - compute) };
    });
    const one = line(fit.map((f) => [f.flops / 1e9, f.ms]));
    const peak = 1000 / one.slope; // slope: ms per GFLOP
    const layers = base(FIT[0]!).model.n_layers;
    const blockUs = Math.max(0, (one.intercept / layers) * 1000);
    // 2. several threads: measured − the rest = compute · u + exchanges · x
    const ideal = make(peak, blockUs, [[1, 1]], 0);
    const counts = [...new Set(threads.map((x) => x.D))];
    const rows = threads.map(({ d, D }, i): number[] => {
      const p = project({ ...ideal, gpus_per_node: D }, tD[i]!.workload);
      const compute = p.breakdown_ms.dense + p.breakdown_ms.experts;
      log(`fit d_model ${d}, ${D} devices: ${tD[i]!.measured.toFixed(1)} ms a step; with threads at full speed and free exchanges the model says ${p.step_ms.toFixed(1)} ms`);
      // unknowns: 1/parallel_efficiency per device count, then the exchange cost
      return [...counts.map((n) => (n === D ? compute : 0)), (4 * p.layers.length) / 1000, tD[i]!.measured - (p.step_ms - compute)];
    });
    const solution = leastSquares(rows);
    const exchangeUs = Math.max(0, solution.at(-1)!);
    const efficiency = counts.map((n, k): [number, number] => [n, Math.min(1, 1 / Math.max(1, solution[k]!))]);
    const cluster = make(peak, blockUs, efficiency, exchangeUs);
    log(`fitted: ${(blockUs / 1000).toFixed(2)} ms per block + FLOPs at ${peak.toFixed(2)} GFLOP/s; threads at ${efficiency.map(([n, e]) => `${(100 * e).toFixed(0)}% of their speed alone with ${n} devices`).join(', ')}, and ${(exchangeUs / 1000).toFixed(2)} ms per exchange`);
    // 3. held out
    const cases: CalibrationCase[] = heldOut.map(({ d, D }, i) => {
      const measured = tH[i]!.measured;
      const predicted = project({ ...cluster, gpus_per_node: D }, tH[i]!.workload).step_ms;
      log(`held out d_model ${d}, ${D} devices: measured ${measured.toFixed(1)} ms, predicted ${predicted.toFixed(1)} ms`);
      return { layout: 'spmd', devices: D, d_model: d, measured_step_ms: measured, predicted_step_ms: predicted, error: Math.abs(predicted - measured) / measured };
    });
    mkdirSync(opts.out ?? 'configs/clusters', { recursive: true });
    const file = join(opts.out ?? 'configs/clusters', 'this-machine.yaml');
    writeFileSync(file, `# Fitted by \`switch-sim simulate --calibrate\` on ${new Date().toISOString().slice(0, 10)} (${availableParallelism()} cores): see src/sim/calibrate.ts.\n${YAML.stringify(cluster)}`);
    return { cluster, fit, cases, max_error: Math.max(...cases.map((c) => c.error)), file };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function calibrationTable(c: Calibration): string {
  const rows = c.cases.map((x) => `${x.layout.padEnd(7)} ${String(x.devices).padStart(7)} ${String(x.d_model).padStart(7)} ${x.measured_step_ms.toFixed(1).padStart(12)} ${x.predicted_step_ms.toFixed(1).padStart(13)} ${(100 * x.error).toFixed(1).padStart(6)}%`);
  return `layout  devices d_model measured ms predicted ms  error\n${rows.join('\n')}\nmax error ${(100 * c.max_error).toFixed(1)}%; wrote ${c.file}\n`;
}
