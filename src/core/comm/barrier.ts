/**
 * A barrier for the devices of the spmd layout, in shared memory: no round trip through the main
 * thread. Layout (Int32): [arrived, generation, aborted, arrivals of rank 0 … D−1].
 * The last device to arrive resets the count and bumps the generation; the others sleep on the
 * generation (Atomics.wait, in short slices so that an abort is seen). The main thread aborts it when a
 * device crashed or hung: every waiter then throws BarrierAbortedError instead of waiting forever, and
 * the per-rank arrival counts say who never came (the device to blame).
 */
import { maxOf, minOf } from '../util/extremes.js';

const ARRIVED = 0;
const GENERATION = 1;
const ABORTED = 2;
const RANKS = 3;
/** how long a waiter sleeps before it looks at the abort flag again */
const SLICE_MS = 50;

export class BarrierAbortedError extends Error {
  override name = 'BarrierAbortedError';
}

export function allocateBarrier(devices: number): SharedArrayBuffer {
  return new SharedArrayBuffer((RANKS + devices) * 4);
}

export class Barrier {
  private readonly a: Int32Array;
  readonly devices: number;

  constructor(buffer: SharedArrayBuffer, private readonly rank = -1) {
    this.a = new Int32Array(buffer);
    this.devices = this.a.length - RANKS;
  }

  /** Blocks until every device has arrived; returns the milliseconds this device waited. Worker threads only. */
  wait(): number {
    const a = this.a;
    if (Atomics.load(a, ABORTED) !== 0) throw new BarrierAbortedError('aborted: another device failed');
    const gen = Atomics.load(a, GENERATION);
    Atomics.add(a, RANKS + this.rank, 1);
    if (Atomics.add(a, ARRIVED, 1) === this.devices - 1) {
      Atomics.store(a, ARRIVED, 0);
      Atomics.add(a, GENERATION, 1);
      Atomics.notify(a, GENERATION);
      return 0;
    }
    const t0 = performance.now();
    while (Atomics.load(a, GENERATION) === gen) {
      if (Atomics.load(a, ABORTED) !== 0) throw new BarrierAbortedError('aborted: another device failed');
      Atomics.wait(a, GENERATION, gen, SLICE_MS);
    }
    return performance.now() - t0;
  }

  /** Wakes every waiter with an error (main thread: a device crashed or hung). */
  abort(): void {
    Atomics.store(this.a, ABORTED, 1);
    Atomics.notify(this.a, GENERATION);
  }

  get aborted(): boolean {
    return Atomics.load(this.a, ABORTED) !== 0;
  }

  /** How many times each device has arrived: the one behind the others is the one that never came. */
  arrivals(): number[] {
    return Array.from({ length: this.devices }, (_, d) => Atomics.load(this.a, RANKS + d));
  }

  /** The device that the others are waiting for, when one is behind (else undefined). */
  laggard(): number | undefined {
    const n = this.arrivals();
    const min = minOf(n);
    return min < maxOf(n) ? n.indexOf(min) : undefined;
  }
}
