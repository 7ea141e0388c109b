import { basename, extname } from 'node:path';
import { z } from 'zod';
import { describe, readConfigFile } from '../core/config/load.js';

/**
 * A GPU cluster for `switch-sim simulate` (configs/clusters/*.yaml), validated like every config:
 * unknown keys, wrong types and out-of-range values are one-line errors naming the field. Every
 * constant of a shipped file cites its public source there; none is fitted to an end-to-end result.
 */
const positive = () => z.number().positive();
const fraction = () => z.number().gt(0).max(1);
/** [x, y] points, x increasing, interpolated in log(x) */
const points = (y: z.ZodNumber) => z.array(z.tuple([positive(), y])).min(1).refine(
  (pts) => pts.every((p, i) => i === 0 || p[0] > pts[i - 1]![0]),
  'points must be in increasing order of their first value',
);

export const ClusterSchema = z.strictObject({
  name: z.string().min(1),
  nodes: z.number().int().min(1),
  gpus_per_node: z.number().int().min(1),
  gpu: z.strictObject({
    name: z.string().min(1),
    tflops_bf16: positive(),
    /** dense FP8 Tensor Core peak; needed by plans with precision fp8 */
    tflops_fp8: positive().optional(),
    tflops_fp32: positive(),
    hbm_gbps: positive(),
    /** GB (10⁹ bytes) of device memory; without it nothing is said about fitting */
    memory_gb: positive().optional(),
    /** the fraction of peak a large GEMM achieves (a measured maximum achievable matmul rate) */
    matmul_efficiency: fraction(),
    /**
     * the fraction of peak fused (flash) attention achieves, forward and backward together; default
     * matmul_efficiency
     */
    attention_efficiency: fraction().optional(),
    /** a kernel's fixed cost (launch and set-up), µs: what the smallest GEMMs take */
    kernel_us: z.number().min(0).optional(),
    /** rows of a GEMM tile: each GEMM's rows are padded to it (an expert with few rows pays a whole tile) */
    gemm_tile_rows: z.number().int().min(1).optional(),
    /** this machine only: how many device threads compute at once (more devices than cores take turns) */
    cores: z.number().int().min(1).optional(),
    /**
     * a fixed cost per transformer block per micro-batch, forward and backward (on this machine, tfjs's
     * per-op costs), µs
     */
    block_overhead_us: z.number().min(0).optional(),
    /**
     * this machine only: by device count, a device thread's compute speed while the others compute too,
     * relative to alone
     */
    parallel_efficiency: points(fraction()).optional(),
  }),
  /**
   * NVLink-class links inside a node: NCCL's bus bandwidth per GPU per direction, and NCCL's latency per
   * algorithm step
   */
  intra_node: z.strictObject({ gbps: positive(), latency_us: z.number().min(0) }),
  /**
   * the network between nodes: achieved bandwidth per NIC per direction, NCCL's latency per step over it,
   * NICs per node (rails)
   */
  inter_node: z.strictObject({
    gbps: positive(), latency_us: z.number().min(0), nics_per_node: z.number().int().min(1).optional(),
  }),
  /** NCCL's base latency of one collective (its launch), µs */
  collective_latency_us: z.number().min(0).optional(),
  /**
   * Kernel-level costs beyond the GEMMs (src/sim/kernels.ts, src/sim/host.ts). Without it elementwise work is
   * its bytes at peak HBM bandwidth and nothing else: the coarse model this machine's calibration was fitted with.
   */
  kernels: z.strictObject({
    /** the fraction of HBM bandwidth streaming elementwise kernels achieve (norms, activations, adds, the optimizer) */
    hbm_efficiency: fraction(),
    /** the fraction row gathers and scatters achieve (the MoE layer's token permutation and unpermutation) */
    gather_efficiency: fraction(),
    /** a memory-bound kernel's fixed cost on the GPU, µs */
    floor_us: z.number().min(0),
    /** the host's time per kernel it issues (framework, dispatcher and launch), forward and backward threads, µs */
    host_forward_us: z.number().min(0),
    host_backward_us: z.number().min(0),
    /** small framework kernels an MoE layer launches beyond those the model names (router bookkeeping, copies) */
    moe_glue_forward: z.number().int().min(0),
    moe_glue_backward: z.number().int().min(0),
  }).optional(),
  all_to_all: z.enum(['flat', 'hierarchical']),
  /**
   * the data-parallel gradient reduction runs during the last micro-batch's backward (Megatron-Core's
   * overlap_grad_reduce); default true
   */
  overlap_grad_reduce: z.boolean().optional(),
  /**
   * the width of activations and gradients moved and stored when the plan does not say (this machine computes
   * in fp32)
   */
  precision: z.enum(['bf16', 'fp32']),
  /**
   * this machine only: a fixed cost per exchange between two or more devices (waking threads, waiting at
   * barriers), µs: one number, or [devices, µs] points
   */
  exchange_overhead_us: z.union([z.number().min(0), points(z.number().min(0))]).optional(),
  /**
   * this machine only: a fixed cost per step outside the modelled parts (messages to the device threads,
   * metrics), µs
   */
  step_overhead_us: z.number().min(0).optional(),
  /**
   * this machine only: the runs its constants were fitted to, their layout and device counts. A cluster
   * with it is this machine: simulate projects the run's (or config's) own device threads, not gpus_per_node.
   */
  calibration: z.strictObject({
    layout: z.enum(['coordinator', 'spmd']), devices: z.array(z.number().int().min(1)).min(1),
  }).optional(),
});

export type Cluster = z.infer<typeof ClusterSchema>;

export function validateCluster(tree: unknown, where = 'cluster'): Cluster {
  const parsed = ClusterSchema.safeParse(tree);
  if (!parsed.success) throw describe(parsed.error, tree as Record<string, unknown>, `${where}: `);
  return parsed.data;
}

/** Reads and validates a cluster file; errors name the file and the field. */
export function loadCluster(file: string): Cluster {
  return validateCluster(readConfigFile(file), `cluster ${basename(file, extname(file))}`);
}

export const gpuCount = (c: Cluster) => c.nodes * c.gpus_per_node;

/** NICs per node: the cluster's rails (one per GPU when it does not say). */
export const nicsPerNode = (c: Cluster) => c.inter_node.nics_per_node ?? c.gpus_per_node;

/** This machine's fixed cost of one exchange among N devices, µs (none with one device: nobody to wait for). */
export function exchangeOverheadUs(c: Cluster): number {
  const x = c.exchange_overhead_us;
  if (gpuCount(c) < 2 || x === undefined) return 0;
  return typeof x === 'number' ? x : interpolate(x as [number, number][], gpuCount(c));
}

/** A curve's value at x: log-linear between points, flat beyond the ends. */
export function interpolate(points: [number, number][], x: number): number {
  if (x <= points[0]![0]) return points[0]![1];
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i]!;
    if (x <= x1) {
      const [x0, y0] = points[i - 1]!;
      const f = (Math.log(x) - Math.log(x0)) / (Math.log(x1) - Math.log(x0));
      return y0 + f * (y1 - y0);
    }
  }
  return points.at(-1)![1];
}
