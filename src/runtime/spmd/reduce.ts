import { sliceOf } from '../../core/comm/all-reduce.js';
import type { Barrier } from '../../core/comm/barrier.js';

/** The shared memory of the gradient reduction: two generations, so that one barrier per step suffices. */
export interface ReduceBuffers {
  /** Float32 [2, D, P]: per generation, each device's dense gradient */
  rows: SharedArrayBuffer;
  /** Float64 [2, D]: per generation, each device's experts' Σ‖g‖² */
  norms: SharedArrayBuffer;
  /** P, the dense gradient's length */
  size: number;
}

export function allocateReduce(devices: number, size: number): ReduceBuffers {
  return { rows: new SharedArrayBuffer(2 * devices * size * 4), norms: new SharedArrayBuffer(2 * devices * 8), size };
}

export interface GradReduceResult {
  /** √(Σ‖g‖²) over the summed dense gradient and every device's experts: the same number on every device */
  gradNorm: number;
  /** the whole reduction, its barrier wait included */
  ms: number;
  /** of which waiting at its barrier (the one before the sum and the global norm can be known) */
  barrierMs: number;
}

/**
 * The spmd optimizer step's collective: the dense gradients summed over devices, and the global gradient
 * norm, behind one barrier. Every device writes its gradient (the engine accumulates straight into its
 * row) and its experts' Σ‖g‖², meets the others once, then sums every value itself: element i is
 * rows[0][i] + rows[1][i] + … in rank order (as core/comm/all-reduce.ts's reduce-scatter adds them), and
 * Σ‖g‖² is, over devices d in rank order, (Σ of the squared sums over d's slice, sliceOf) + d's experts'
 * share, the order of all-reduce.ts's scheme with its separate norm pass. So every device gets the same
 * bits as before, without the all-gather's barrier.
 * Without that barrier a device may reach its next step while another still reads this step's rows and
 * norms, so they alternate between two generations: generation g is rewritten two steps later, after the
 * next step's barrier, which nobody passes before everyone has finished reading it.
 */
export class GradReduce {
  private readonly rows: Float32Array[];
  private readonly norms: Float64Array[];
  /** the summed dense gradient (this device's own copy) */
  readonly sum: Float32Array;
  /** the generation the engine accumulates into now */
  private gen = 0;

  constructor(bufs: ReduceBuffers, private readonly rank: number, private readonly barrier: Barrier) {
    const D = barrier.devices;
    const P = bufs.size;
    this.rows = [0, 1].map((g) => new Float32Array(bufs.rows, g * D * P * 4, D * P));
    this.norms = [0, 1].map((g) => new Float64Array(bufs.norms, g * D * 8, D));
    this.sum = new Float32Array(P);
  }

  /** the generation whose row the dense gradients accumulate into now (0 or 1) */
  get generation(): number {
    return this.gen;
  }

  /** this device's row of generation g */
  ownRow(g: number): Float32Array {
    const P = this.sum.length;
    return this.rows[g]!.subarray(this.rank * P, (this.rank + 1) * P);
  }

  /**
   * `expertSquares`: Σ‖g‖² of this device's expert gradients. Afterwards the generation is the other one,
   * its row zeroed: the next step's gradients go there.
   */
  run(expertSquares: number): GradReduceResult {
    const t0 = performance.now();
    const P = this.sum.length;
    const D = this.barrier.devices;
    const rows = this.rows[this.gen]!;
    const norms = this.norms[this.gen]!;
    norms[this.rank] = expertSquares;
    const barrierMs = this.barrier.wait(); // every row and every experts' share is written
    const sum = this.sum;
    let total = 0;
    for (let q = 0; q < D; q++) {
      const { from, to } = sliceOf(P, D, q);
      let part = 0;
      for (let i = from; i < to; i++) {
        let s = rows[i]!;
        for (let d = 1; d < D; d++) s += rows[d * P + i]!;
        const r = Math.fround(s); // the float32 that the sum holds
        sum[i] = r;
        part += r * r;
      }
      total += part + norms[q]!;
    }
    // the other generation was last read in the previous step, before this step's barrier: free to reuse
    this.gen = 1 - this.gen;
    this.ownRow(this.gen).fill(0);
    return { gradNorm: Math.sqrt(total), ms: performance.now() - t0, barrierMs };
  }
}
