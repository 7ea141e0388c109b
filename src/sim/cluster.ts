import { basename, extname } from 'node:path';
import { z } from 'zod';
import { describe, readConfigFile } from '../config/load.js';

/**
 * A GPU cluster for `switch-sim simulate` (configs/clusters/*.yaml), validated like every config:
 * unknown keys, wrong types and out-of-range values are one-line errors naming the field.
 */
const positive = () => z.number().positive();
/** [x, y] points, x increasing, interpolated in log(x) */
const points = (y: z.ZodNumber) => z.array(z.tuple([positive(), y])).min(1).refine((pts) => pts.every((p, i) => i === 0 || p[0] > pts[i - 1]![0]), 'points must be in increasing order of their first value');
/** an efficiency curve: [x, fraction] points */
const curve = () => points(z.number().gt(0).max(1));
const link = () => z.strictObject({
  /** per direction, per GPU */
  gbps: positive(),
  /** per message */
  latency_us: z.number().min(0),
});

export const ClusterSchema = z.strictObject({
  name: z.string().min(1),
  nodes: z.number().int().min(1),
  gpus_per_node: z.number().int().min(1),
  gpu: z.strictObject({
    name: z.string().min(1),
    tflops_bf16: positive(),
    tflops_fp32: positive(),
    hbm_gbps: positive(),
    /** achieved fraction of peak by the FLOPs of one matmul */
    matmul_efficiency: curve(),
    /** this machine only: how many device threads compute at once (more devices than cores take turns) */
    cores: z.number().int().min(1).optional(),
    /** a fixed cost per transformer block per step, forward and backward (kernel launches; on this machine, tfjs's per-op costs), µs */
    block_overhead_us: z.number().min(0).optional(),
    /** this machine only: by device count, a device thread's compute speed while the others compute too, relative to alone (shared caches, memory, GC threads) */
    parallel_efficiency: curve().optional(),
  }),
  intra_node: link(),
  inter_node: link(),
  all_to_all: z.enum(['flat', 'hierarchical']),
  /** achieved fraction of a link's bandwidth by message size (bytes) */
  message_efficiency: curve(),
  precision: z.enum(['bf16', 'fp32']),
  /** this machine only: a fixed cost per exchange between two or more devices (waking threads, waiting at barriers), µs: one number, or [devices, µs] points */
  exchange_overhead_us: z.union([z.number().min(0), points(z.number().min(0))]).optional(),
  /** this machine only: a fixed cost per step outside the modelled parts (messages to the device threads, metrics), µs */
  step_overhead_us: z.number().min(0).optional(),
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

/** Bytes of one value (an activation, a gradient) at the cluster's precision. */
export const valueBytes = (c: Cluster) => (c.precision === 'bf16' ? 2 : 4);

/** Peak FLOP/s of one GPU at the cluster's precision. */
export const peakFlops = (c: Cluster) => (c.precision === 'bf16' ? c.gpu.tflops_bf16 : c.gpu.tflops_fp32) * 1e12;

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
