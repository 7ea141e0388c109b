import { setFlagsFromString } from 'node:v8';

/**
 * V8's heap sizing for training, set once per process before the first training step or device thread.
 *
 * A training thread holds a steady ~25–35 MB of JavaScript objects and churns through about 1 MB a step,
 * and left to itself V8 let the old generation grow only a little past what survived each full
 * collection: a run of `configs/tiny-moe.yaml` ran a full mark-compact every 6–7 steps once warm, and
 * `configs/tiny-shakespeare.yaml` about one a step, their marking on V8's helper threads. On two cores
 * those helpers take time from the training threads, and in `spmd` a device slowed by them holds the
 * other one up at the next barrier. Here:
 * - `--heap-growing-percent=100`: the old generation grows to twice what survived before the next full
 *   collection (read at every collection, so it applies to every isolate, the main thread's included);
 * - `--initial-old-space-size=64` (MB): threads started after this begin above a device thread's live
 *   set instead of collecting their way up to it (read when an isolate is made: device threads only).
 * Full collections counted with `--trace-gc` (node's --import of a file calling setFlagsFromString, as
 * worker threads refuse it in execArgv): in-process tiny-moe, 600 steps: 52 → 17–20; in-process
 * tiny-shakespeare, 150 steps: 158 → 25; spmd tiny-moe with two devices, 600 steps: 20–28 → 6–7 per
 * device thread (2 with 128 MB, not taken: 8 device threads would hold up to 1 GB before collecting).
 * The cost is memory: a heap up to twice its live set. GC settings change no number the model computes.
 */
export const HEAP_FLAGS = ['--heap-growing-percent=100', '--initial-old-space-size=64'] as const;

let tuned = false;

/** Sets HEAP_FLAGS for this process (once; later calls do nothing). */
export function tuneHeap(): void {
  if (tuned) return;
  tuned = true;
  for (const flag of HEAP_FLAGS) setFlagsFromString(flag);
}
