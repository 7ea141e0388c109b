import type { Cluster } from './cluster.js';

/**
 * The host issues every kernel and collective one after the other (PyTorch eager: Python, the dispatcher,
 * cudaLaunchKernel), h_fwd µs each on the forward thread and h_bwd on the autograd thread
 * (cluster.kernels.host_*_us). The GPU runs what was issued while the host issues the rest, so a pass of
 * a block takes the longer of the two,
 *   T = max(T_gpu, n · h)
 * and the host is the pace when its kernels are short: few tokens a micro-batch (small micro-batches,
 * tensor and sequence parallelism) or small layers. The pass is a block's forward or backward: the
 * dropless dispatcher reads the tokens per expert back to the host once per MoE layer forward (a device
 * to host sync), and the pipeline's sends synchronise between micro-batches, so the host cannot run
 * further ahead than that. Without cluster.kernels, no host cost (0).
 */
export interface Pass {
  direction: 'forward' | 'backward';
  /** kernels and collectives the host issues */
  kernels: number;
  /** what the GPU spends on the pass: compute and the communication it waits for */
  gpuUs: number;
}

/** The host's time to issue a pass, µs. */
export function hostUs(c: Cluster, p: Pick<Pass, 'direction' | 'kernels'>): number {
  const k = c.kernels;
  if (!k) return 0;
  return p.kernels * (p.direction === 'forward' ? k.host_forward_us : k.host_backward_us);
}

/** What the host adds to a pass beyond the GPU's own time: max(0, n · h − T_gpu), µs. */
export function hostBoundUs(c: Cluster, p: Pass): number {
  return Math.max(0, hostUs(c, p) - p.gpuUs);
}
