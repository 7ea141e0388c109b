import type { AllReduceBuffers } from '../../core/comm/all-reduce.js';
import { sliceOf } from '../../core/comm/all-reduce.js';
import type { Barrier } from '../../core/comm/barrier.js';

export interface GradReduceResult {
  /** √(Σ‖g‖²) over the summed dense gradient and every device's experts: the same number on every device */
  gradNorm: number;
  /** the whole reduction, barrier waits included */
  ms: number;
  /** of which waiting at its two barriers */
  barrierMs: number;
  /** of which waiting at the second barrier, the one before the global norm is known */
  normWaitMs: number;
}

/**
 * The spmd optimizer step's collective: the dense gradients' sum-all-reduce (core/comm/all-reduce.ts's
 * two-phase scheme, the same sums in the same order) and the global gradient norm, in two barriers
 * rather than three: each device squares its slice of the sum while it writes it, adds its experts'
 * Σ‖g‖² (known before the first barrier), and publishes its share before the second barrier, which the
 * all-gather needs anyway.
 *   1. every device's gradient is in its row of `rows` [D, P] (the engine accumulates into it in place)
 *   2. barrier; device d sums column slice d over the rows in rank order into `sum`, and squares it
 *   3. barrier; every device reads all of `sum` and adds the D shares of the norm in rank order
 */
export class GradReduce {
  private readonly rows: Float32Array;
  readonly sum: Float32Array;
  /** this device's row of `rows`: its gradients live here */
  readonly own: Float32Array;
  private readonly norms: Float64Array;

  constructor(bufs: AllReduceBuffers, norms: SharedArrayBuffer, private readonly rank: number,
    private readonly barrier: Barrier) {
    this.rows = new Float32Array(bufs.rows);
    this.sum = new Float32Array(bufs.sum);
    this.own = this.rows.subarray(rank * bufs.size, (rank + 1) * bufs.size);
    this.norms = new Float64Array(norms);
  }

  /** `expertSquares`: Σ‖g‖² of this device's expert gradients. */
  run(expertSquares: number): GradReduceResult {
    const t0 = performance.now();
    const P = this.sum.length;
    const D = this.barrier.devices;
    let barrierMs = this.barrier.wait(); // every row is written
    const { from, to } = sliceOf(P, D, this.rank);
    const { rows, sum } = this;
    let own = 0;
    for (let i = from; i < to; i++) {
      let s = rows[i]!;
      for (let d = 1; d < D; d++) s += rows[d * P + i]!;
      const r = Math.fround(s); // the float32 that `sum` holds
      sum[i] = r;
      own += r * r;
    }
    this.norms[this.rank] = own + expertSquares;
    const normWaitMs = this.barrier.wait(); // every slice and every share of the norm is written
    barrierMs += normWaitMs;
    let total = 0;
    for (let d = 0; d < D; d++) total += this.norms[d]!; // the same order on every device
    return { gradNorm: Math.sqrt(total), ms: performance.now() - t0, barrierMs, normWaitMs };
  }
}
