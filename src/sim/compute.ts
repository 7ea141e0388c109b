import type { Config } from '../core/config/defaults.js';
import { gpuCount, interpolate, type Cluster } from './cluster.js';

/** One GEMM [m, k] · [k, n], `count` times the same shape. */
export interface Gemm {
  m: number;
  k: number;
  n: number;
  count?: number;
}

/** What a piece of work costs one GPU: GEMM kernels (each a list of GEMMs launched together: a grouped GEMM), fused attention, memory-bound bytes. */
export interface Work {
  kernels: Gemm[][];
  /** fused (flash) attention FLOPs: never in memory, its own efficiency; and its kernel launches */
  attentionFlops: number;
  attentionKernels: number;
  /** bytes read and written by elementwise work (norms, residual adds, activations, softmax, the optimizer) */
  bytes: number;
  /** fixed costs (this machine's per-block overhead), µs */
  fixedUs: number;
}


/** Peak FLOP/s of one GPU for the plan: FP8 Tensor Cores with plan.precision fp8, else BF16 (FP32 on a cluster that computes in fp32). */
export function peakFlops(c: Cluster, config: Config): number {
  if (config.plan.precision === 'fp8') return c.gpu.tflops_fp8! * 1e12;
  return (c.precision === 'fp32' ? c.gpu.tflops_fp32 : c.gpu.tflops_bf16) * 1e12;
}

/** Bytes of one value moved or stored (an activation, a gradient): bf16 unless the cluster computes in fp32. */
export const valueBytes = (c: Cluster) => (c.precision === 'fp32' ? 4 : 2);

/**
 * This machine only: devices beyond its cores take turns, and threads computing together each run at
 * parallel_efficiency of their speed alone. 1 on a GPU cluster.
 */
function machineShare(c: Cluster): number {
  const N = gpuCount(c);
  const parallel = N > 1 && c.gpu.parallel_efficiency ? interpolate(c.gpu.parallel_efficiency as [number, number][], N) : 1;
  return Math.max(1, N / (c.gpu.cores ?? Infinity)) / parallel;
}

/**
 * A GEMM kernel's time: a fixed cost per launch, then its FLOPs at the achievable rate, each GEMM's rows
 * padded to the tile height (an expert's 37 rows cost a full 128-row tile). Work is spread over all
 * SMs whatever the tile count (Hopper's GEMMs split K or stream tiles: no wave quantization), so
 *   T = kernel_us + Σ 2·⌈m/TM⌉·TM·k·n / (peak · matmul_efficiency)
 * Held against XLA's measured sm_90 GEMM table (test/simulate-gemm.test.ts): median error 5%.
 */
export function gemmUs(c: Cluster, config: Config, kernel: Gemm[]): number {
  const rate = peakFlops(c, config) * c.gpu.matmul_efficiency;
  const TM = c.gpu.gemm_tile_rows ?? 1;
  let flops = 0;
  for (const g of kernel) flops += 2 * Math.ceil(g.m / TM) * TM * g.k * g.n * (g.count ?? 1);
  if (flops === 0) return 0;
  return (c.gpu.kernel_us ?? 0) + (flops / rate) * 1e6;
}

/** Compute time of a piece of work on one GPU, µs: GEMMs, fused attention, memory-bound bytes at HBM bandwidth, fixed costs. */
export function computeUs(c: Cluster, config: Config, w: Work): number {
  const attention = w.attentionFlops > 0 ? (w.attentionFlops / (peakFlops(c, config) * (c.gpu.attention_efficiency ?? c.gpu.matmul_efficiency))) * 1e6 + w.attentionKernels * (c.gpu.kernel_us ?? 0) : 0;
  const gemms = w.kernels.reduce((a, k) => a + gemmUs(c, config, k), 0);
  return (w.fixedUs + gemms + attention + (w.bytes / (c.gpu.hbm_gbps * 1e9)) * 1e6) * machineShare(c);
}
