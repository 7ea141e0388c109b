import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * Trains a config ROUNDS times and returns its step time: per run the median after the warm-up steps,
 * then the fastest run (on a shared 2-core machine, interference only ever slows a run down), with that
 * run's routing (those steps only).
 */
async function timedRun(config: Config, dir: string): Promise<{ measured: number; workload: Workload }> {
  let best: { measured: number; workload: Workload } | undefined;
  for (let r = 0; r < ROUNDS; r++) {
    const out = `${dir}-${r}`;
    await train({ config, name: 'calibrate', outDir: out });
    const w = runWorkload(out);
    const steps = w.steps.filter((s) => s.step > SKIP);
    const times = stepTimes(out, config);
    const sorted = steps.map((s) => times.get(s.step)!).sort((a, b) => a - b);
    const measured = sorted[Math.floor(sorted.length / 2)]!;
    if (!best || measured < best.measured) best = { measured, workload: { ...w, steps } };
  }
  return best!;
}

/** Least squares for y = a·u + b·v over rows [u, v, y]. */
export function leastSquares2(rows: [number, number, number][]): [number, number] {
  let suu = 0, suv = 0, svv = 0, suy = 0, svy = 0;
  for (const [u, v, y] of rows) {
    suu += u * u; suv += u * v; svv += v * v; suy += u * y; svy += v * y;
  }
  const det = suu * svv - suv * suv;
  return det === 0 ? [suy / suu, 0] : [(suy * svv - svy * suv) / det, (svy * suu - suy * suv) / det];
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
 * training steps (per config the faster of two runs' medians of 12 steps after 4 warm-up steps, unprofiled),
 * then checks it on held-out runs.
 *  1. one device thread, two model sizes × two batch sizes: step = fixed + FLOPs / rate (least squares):
 *     the rate is the "GPU"'s peak, the fixed part (tfjs's per-op costs, messages, AdamW) a cost per block;
 *  2. two and four device threads at the same sizes: what the model with threads at full speed and free
 *     exchanges leaves unexplained = compute · (1/parallel_efficiency) + exchanges · exchange_overhead
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
    const make = (peakGflops: number, blockUs: number, parallelEfficiency: number, exchangeUs: number) => validateCluster({
      name: 'this-machine', nodes: 1, gpus_per_node: 1,
      gpu: {
        name: `${availableParallelism()}-core CPU, tfjs-wasm device threads`, tflops_bf16: peakGflops / 1000, tflops_fp32: peakGflops / 1000, hbm_gbps: 1e6,
        matmul_efficiency: [[1, 1]], block_overhead_us: blockUs, cores: availableParallelism(), parallel_efficiency: parallelEfficiency,
      },
      intra_node: { gbps, latency_us: 0 }, inter_node: { gbps, latency_us: 0 }, all_to_all: 'flat', message_efficiency: [[1, 1]], precision: 'fp32',
      exchange_overhead_us: exchangeUs,
    });
    // 1. one thread: at 1 GFLOP/s and no fixed costs, the model's compute ms is the GFLOPs; fit measured = fixed + GFLOPs / rate
    const unit = make(1, 0, 1, 0);
    const fit: Calibration['fit'] = [];
    for (const d of FIT) {
      for (const B of [4, 16]) {
        const { measured, workload } = await timedRun(base(d, 'parallel.devices=1', `data.batch_size=${B}`, `train.steps=${STEPS}`), join(work, `fit-${d}-${B}`));
        const p = project(unit, workload);
        fit.push({ d_model: d, batch_size: B, flops: (p.breakdown_ms.dense + p.breakdown_ms.experts) * 1e6, ms: measured - (p.step_ms - p.breakdown_ms.dense - p.breakdown_ms.experts) });
        log(`fit d_model ${d}, batch ${B}, 1 device: ${measured.toFixed(1)} ms a step for ${(fit.at(-1)!.flops / 1e9).toFixed(3)} GFLOP`);
      }
    }
    const one = line(fit.map((f) => [f.flops / 1e9, f.ms]));
    const peak = 1000 / one.slope; // slope: ms per GFLOP
    const layers = base(FIT[0]!).model.n_layers;
    const blockUs = Math.max(0, (one.intercept / layers) * 1000);
    // 2. several threads: measured − the rest = compute · u + exchanges · x
    const ideal = make(peak, blockUs, 1, 0);
    const rows: [number, number, number][] = [];
    for (const d of FIT) {
      for (const D of [2, 4]) {
        const { measured, workload } = await timedRun(base(d, `parallel.devices=${D}`, `train.steps=${STEPS}`), join(work, `fit-${d}-D${D}`));
        const p = project({ ...ideal, gpus_per_node: D }, workload);
        const compute = p.breakdown_ms.dense + p.breakdown_ms.experts;
        rows.push([compute, (4 * p.layers.length) / 1000, measured - (p.step_ms - compute)]);
        log(`fit d_model ${d}, ${D} devices: ${measured.toFixed(1)} ms a step; with threads at full speed and free exchanges the model says ${p.step_ms.toFixed(1)} ms`);
      }
    }
    const [u, exchangeUs] = leastSquares2(rows);
    const parallelEfficiency = Math.min(1, 1 / Math.max(1, u));
    const cluster = make(peak, blockUs, parallelEfficiency, Math.max(0, exchangeUs));
    log(`fitted: ${(blockUs / 1000).toFixed(2)} ms per block + FLOPs at ${peak.toFixed(2)} GFLOP/s; with more devices, threads at ${(100 * parallelEfficiency).toFixed(0)}% of their speed alone and ${(Math.max(0, exchangeUs) / 1000).toFixed(2)} ms per exchange`);
    const cases: CalibrationCase[] = [];
    for (const d of HELD_OUT) {
      for (const D of [1, 2, 4]) {
        const { measured, workload } = await timedRun(base(d, `parallel.devices=${D}`, `train.steps=${STEPS}`), join(work, `case-${d}-${D}`));
        const predicted = project({ ...cluster, gpus_per_node: D }, workload).step_ms;
        cases.push({ layout: 'spmd', devices: D, d_model: d, measured_step_ms: measured, predicted_step_ms: predicted, error: Math.abs(predicted - measured) / measured });
        log(`held out d_model ${d}, ${D} devices: measured ${measured.toFixed(1)} ms, predicted ${predicted.toFixed(1)} ms`);
      }
    }
    mkdirSync(opts.out ?? 'configs/clusters', { recursive: true });
    const file = join(opts.out ?? 'configs/clusters', 'this-machine.yaml');
    writeFileSync(file, `# Fitted by \`switch-sim simulate --calibrate\` on ${new Date().toISOString().slice(0, 10)} (${availableParallelism()} cores): see src/sim/calibrate.ts.\n${YAML.stringify(cluster)}`);
    return { cluster, fit, cases, max_error: Math.max(...cases.map((c) => c.error)), file };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** each logged step's wall time, from its tokens/s (log_every 1: the window is that step) */
function stepTimes(dir: string, config: Config): Map<number, number> {
  const m = new Map<number, number>();
  for (const line of readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { step: number; tokens_per_s?: number };
    if (r.tokens_per_s) m.set(r.step, ((config.data.batch_size * config.data.seq_len) / r.tokens_per_s) * 1000);
  }
  return m;
}

export function calibrationTable(c: Calibration): string {
  const rows = c.cases.map((x) => `${x.layout.padEnd(7)} ${String(x.devices).padStart(7)} ${String(x.d_model).padStart(7)} ${x.measured_step_ms.toFixed(1).padStart(12)} ${x.predicted_step_ms.toFixed(1).padStart(13)} ${(100 * x.error).toFixed(1).padStart(6)}%`);
  return `layout  devices d_model measured ms predicted ms  error\n${rows.join('\n')}\nmax error ${(100 * c.max_error).toFixed(1)}%; wrote ${c.file}\n`;
}
