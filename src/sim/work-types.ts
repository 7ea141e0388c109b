// What a piece of a step costs one GPU, as the cost model counts it: its GEMMs, fused attention and memory-bound
// bytes. compute.ts prices it; work.ts, kernels.ts and recompute.ts build it.

/** One GEMM [m, k] · [k, n], `count` times the same shape. */
export interface Gemm {
  m: number;
  k: number;
  n: number;
  count?: number;
  /** the product is added into its output (a weight gradient accumulated over micro-batches): [m, n] read and written */
  accumulate?: boolean;
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
  /** memory-bound kernels launched (each its fixed cost, cluster.kernels.floor_us; `bytes` and `gatherBytes` are theirs) */
  memKernels?: number;
  /** bytes of row gathers and scatters (token permutation), at their own achieved bandwidth; and their backward's */
  gatherBytes?: number;
  gatherBackwardBytes?: number;
}
