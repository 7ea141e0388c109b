import { validateCluster, type Cluster } from './cluster.js';
import { project } from './project.js';
import type { Workload } from './workload.js';

/** One calibration run: what it routed (its workload) and its measured ms per step. */
export interface MeasuredRun {
  devices: number;
  measured_ms: number;
  workload: Workload;
}

/** The constants of this machine's model, as fitted (what configs/clusters/this-machine.yaml holds). */
export interface MachineConstants {
  /** one device thread alone: a step is blocks · block_overhead + bytes / memory bandwidth + FLOPs / rate */
  block_overhead_us: number;
  memory_gbps: number;
  peak_gflops: number;
  /** by device count (2 and more): a thread's compute speed among the others, relative to alone */
  parallel_efficiency: [number, number][];
  /** by device count: a fixed cost per exchange (barrier waits, waking threads), µs */
  exchange_overhead_us: [number, number][];
  cores: number;
  /** single-thread copy bandwidth: what packing rows into slots runs at */
  copy_gbps: number;
  /** the runs fitted: their layout and device counts (what simulate says a projection departs from) */
  calibration?: { layout: 'coordinator' | 'spmd'; devices: number[] };
}

/** Least squares for y = Σ a_k·x_k over rows [x_1, …, x_n, y]: the normal equations, by Gaussian elimination. */
export function leastSquares(rows: number[][]): number[] {
  const n = rows[0]!.length - 1;
  const A = Array.from(
    { length: n },
    (_, i) => Array.from({ length: n + 1 }, (_, j) => rows.reduce((a, r) => a + r[i]! * r[j === n ? n : j]!, 0)),
  );
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

/**
 * Least squares with every coefficient ≥ 0: of all subsets of the unknowns (the others held at 0), the
 * best fit whose coefficients are all ≥ 0. Exact, and cheap for the two or three unknowns here.
 */
export function nonNegativeLeastSquares(rows: number[][]): number[] {
  const n = rows[0]!.length - 1;
  let best: { x: number[]; residual: number } = {
    x: new Array<number>(n).fill(0), residual: rows.reduce((a, r) => a + r[n]! ** 2, 0),
  };
  for (let mask = 1; mask < 1 << n; mask++) {
    const keep = Array.from({ length: n }, (_, k) => k).filter((k) => mask & (1 << k));
    const sub = leastSquares(rows.map((r) => [...keep.map((k) => r[k]!), r[n]!]));
    if (sub.some((v) => v < 0)) continue;
    const x = new Array<number>(n).fill(0);
    keep.forEach((k, i) => (x[k] = sub[i]!));
    const residual = rows.reduce((a, r) => a + (r[n]! - x.reduce((s, v, k) => s + v * r[k]!, 0)) ** 2, 0);
    if (residual < best.residual - 1e-12) best = { x, residual };
  }
  return best.x;
}

/** This machine as a cluster file: N "GPUs" are N device threads on `cores` cores. */
export function machineCluster(m: MachineConstants, devices = 1, name = 'this-machine'): Cluster {
  return validateCluster({
    name, nodes: 1, gpus_per_node: devices,
    gpu: {
      name: `${m.cores}-core CPU, tfjs-wasm device threads`, tflops_bf16: m.peak_gflops / 1000,
      tflops_fp32: m.peak_gflops / 1000, hbm_gbps: m.memory_gbps,
      matmul_efficiency: 1, cores: m.cores, block_overhead_us: m.block_overhead_us,
      parallel_efficiency: m.parallel_efficiency,
    },
    intra_node: { gbps: m.copy_gbps, latency_us: 0 }, inter_node: { gbps: m.copy_gbps, latency_us: 0 },
    all_to_all: 'flat', precision: 'fp32',
    // the spmd all-reduce runs after the backward, not during it
    overlap_grad_reduce: false, exchange_overhead_us: m.exchange_overhead_us,
    ...(m.calibration ? { calibration: m.calibration } : {}),
  });
}

const HUGE = 1e12;

/**
 * Fits the machine's constants to measured runs (a pure function: the tests feed it runs that a known
 * machine would have produced, and get that machine back).
 *  1. one device thread: ms = L·block + GB / memory_gbps + GFLOP / peak, the three terms as the model counts
 *     them (its own projection at unit rates), by least squares with every coefficient ≥ 0;
 *  2. per device count D ≥ 2: ms − what the model says with threads at full speed and free exchanges
 *     = compute · v + exchanges · x (v, x ≥ 0), so that parallel_efficiency(D) = 1 / (1 + v), and x the cost of
 *     one exchange (four per Switch layer). Devices beyond the cores take turns (compute × D / cores) before that.
 */
export function fitMachine(runs: MeasuredRun[], base: { cores: number; copy_gbps: number }): MachineConstants {
  const unit = (o: Partial<MachineConstants>, D = 1) => machineCluster(
    {
      block_overhead_us: 0, memory_gbps: HUGE, peak_gflops: HUGE, parallel_efficiency: [[1, 1]],
      exchange_overhead_us: [[1, 0]], ...base, ...o
    },
    D,
  );
  const layouts = [...new Set(runs.map((r) => r.workload.config.parallel.layout))];
  if (layouts.length !== 1) throw new Error(`calibration runs must share one parallel.layout (got ` +
    `${layouts.join(', ')})`);
  const one = runs.filter((r) => r.devices === 1);
  if (one.length < 3) throw new Error(`calibration needs at least three one-device runs (got ${one.length})`);
  const rows1 = one.map((r) => [
    project(unit({ block_overhead_us: 1000 }), r.workload).step_ms, // ms at 1 ms per block
    project(unit({ memory_gbps: 1 }), r.workload).step_ms, // ms at 1 GB/s
    project(unit({ peak_gflops: 1 }), r.workload).step_ms, // ms at 1 GFLOP/s
    r.measured_ms,
  ]);
  const [block, perGb, perGflop] = nonNegativeLeastSquares(rows1) as [number, number, number];
  const alone = {
    block_overhead_us: block * 1000, memory_gbps: perGb > 0 ? 1 / perGb : HUGE,
    peak_gflops: perGflop > 0 ? 1 / perGflop : HUGE,
  };
  const parallel_efficiency: [number, number][] = [];
  const exchange_overhead_us: [number, number][] = [];
  for (const D of [...new Set(runs.map((r) => r.devices))].filter((n) => n > 1).sort((a, b) => a - b)) {
    const rows = runs.filter((r) => r.devices === D).map((r) => {
      const p = project(unit(alone, D), r.workload);
      const compute = p.breakdown_ms.dense + p.breakdown_ms.experts + p.breakdown_ms.optimizer;
      return [compute, (4 * p.layers.length) / 1000, r.measured_ms - p.step_ms];
    });
    const [v, x] = nonNegativeLeastSquares(rows) as [number, number];
    parallel_efficiency.push([D, 1 / (1 + v)]);
    exchange_overhead_us.push([D, x]);
  }
  return {
    ...base, ...alone,
    calibration: { layout: layouts[0]!, devices: [...new Set(runs.map((r) => r.devices))].sort((a, b) => a - b) },
    parallel_efficiency: parallel_efficiency.length ? parallel_efficiency : [[1, 1]],
    exchange_overhead_us: exchange_overhead_us.length ? exchange_overhead_us : [[1, 0]],
  };
}
