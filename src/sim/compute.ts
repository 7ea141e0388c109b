import type { Config } from '../core/config/defaults.js';
import { gpuCount, interpolate, type Cluster } from './cluster.js';
import { memoryBoundUs } from './kernels.js';
import type { Gemm, Work } from './work-types.js';

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
 * SMs whatever the tile count (Hopper's GEMMs split K or stream tiles: no wave quantization). With
 * kernel-level constants (cluster.kernels) the kernel is also no faster than its operands move: A and B
 * read, C written (read and written when accumulated), at the streaming fraction of HBM bandwidth:
 *   T = kernel_us + max( Σ 2·⌈m/TM⌉·TM·k·n / (peak · matmul_efficiency),  Σ bytes / (B_HBM · e) )
 *   bytes = a·(m·k + k·n) + c·m·n·(2 if accumulated else 1)     a: 1 byte in FP8, else c; c the value size
 * A few rows per expert then cost the whole expert's weights read (m·k·n / (m·k + k·n + m·n) FLOP a byte,
 * below the H100's ~330 when m is a few hundred), and a weight gradient its accumulation.
 * Held against XLA's measured sm_90 GEMM table (test/simulate-world.test.ts).
 */
export function gemmUs(c: Cluster, config: Config, kernel: Gemm[]): number {
  const rate = peakFlops(c, config) * c.gpu.matmul_efficiency;
  const TM = c.gpu.gemm_tile_rows ?? 1;
  const out = valueBytes(c);
  const input = config.plan.precision === 'fp8' ? 1 : out;
  let flops = 0;
  let bytes = 0;
  for (const g of kernel) {
    const n = g.count ?? 1;
    flops += 2 * Math.ceil(g.m / TM) * TM * g.k * g.n * n;
    bytes += n * (input * (g.m * g.k + g.k * g.n) + out * g.m * g.n * (g.accumulate ? 2 : 1));
  }
  if (flops === 0) return 0;
  const memory = c.kernels ? bytes / (c.gpu.hbm_gbps * 1e9 * c.kernels.hbm_efficiency) : 0;
  return (c.gpu.kernel_us ?? 0) + Math.max(flops / rate, memory) * 1e6;
}

/** Compute time of a piece of work on one GPU, µs: GEMMs, fused attention, memory-bound kernels (kernels.ts), fixed costs. */
export function computeUs(c: Cluster, config: Config, w: Work): number {
  // FP8 recipes keep attention in BF16 (DeepSeek-V3 report §3.3; Transformer Engine's FP8 leaves DotProductAttention in
  // BF16 unless fp8_dpa): with plan.precision fp8 only the GEMMs run at the FP8 rate
  const attentionPeak = config.plan.precision === 'fp8' ? c.gpu.tflops_bf16 * 1e12 : peakFlops(c, config);
  const attentionRate = attentionPeak * (c.gpu.attention_efficiency ?? c.gpu.matmul_efficiency);
  const attention = w.attentionFlops > 0 ? (w.attentionFlops / attentionRate) * 1e6 + w.attentionKernels * (c.gpu.kernel_us ?? 0) : 0;
  const gemms = w.kernels.reduce((a, k) => a + gemmUs(c, config, k), 0);
  return (w.fixedUs + gemms + attention + memoryBoundUs(c, w)) * machineShare(c);
}

/** Kernels the host issues for a piece of work: each GEMM kernel, the attention kernels, the memory-bound ones. */
export const kernelCount = (w: Work) => w.kernels.length + w.attentionKernels + (w.memKernels ?? 0);
