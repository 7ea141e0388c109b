import type { Barrier } from './barrier.js';

/**
 * Sum-all-reduce of the dense gradients over shared memory, as a ring-free two-phase all-reduce:
 *   reduce-scatter: device d writes its whole gradient g_d into row d of `rows` [D, P]; after a barrier
 *     it sums column slice d (P/D values) over the rows, in rank order, into `sum` [P];
 *   all-gather: after a second barrier every device reads all of `sum`.
 * Each device sums 1/D of the values, and every device reads the same `sum`, so replicas get
 * bit-identical gradients (the summation order is fixed: rank 0, 1, …).
 */
export interface AllReduceBuffers {
  rows: SharedArrayBuffer;
  sum: SharedArrayBuffer;
  size: number;
}

export function allocateAllReduce(devices: number, size: number): AllReduceBuffers {
  return { rows: new SharedArrayBuffer(devices * size * 4), sum: new SharedArrayBuffer(size * 4), size };
}

export interface AllReduceTiming {
  /** the whole all-reduce, barrier waits included */
  ms: number;
  /** of which waiting at its two barriers */
  barrierMs: number;
}

/** The slice [from, to) of P values that device d sums. */
export function sliceOf(size: number, devices: number, d: number): { from: number; to: number } {
  const per = Math.ceil(size / devices);
  return { from: Math.min(size, d * per), to: Math.min(size, (d + 1) * per) };
}

export class AllReduce {
  private readonly rows: Float32Array;
  readonly sum: Float32Array;
  /** this device's row of `rows`: write the gradient here, then run() */
  readonly own: Float32Array;

  constructor(bufs: AllReduceBuffers, private readonly rank: number, private readonly barrier: Barrier) {
    this.rows = new Float32Array(bufs.rows);
    this.sum = new Float32Array(bufs.sum);
    this.own = this.rows.subarray(rank * bufs.size, (rank + 1) * bufs.size);
  }

  get size(): number {
    return this.sum.length;
  }

  /** Sums every device's `own` row (its gradient, written there in place); the result is in `this.sum`. */
  run(): AllReduceTiming {
    const t0 = performance.now();
    const P = this.size;
    const D = this.barrier.devices;
    let barrierMs = this.barrier.wait();
    const { from, to } = sliceOf(P, D, this.rank);
    const rows = this.rows;
    const sum = this.sum;
    for (let i = from; i < to; i++) {
      let s = rows[i]!;
      for (let d = 1; d < D; d++) s += rows[d * P + i]!;
      sum[i] = s;
    }
    barrierMs += this.barrier.wait();
    return { ms: performance.now() - t0, barrierMs };
  }
}
