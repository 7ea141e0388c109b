import tf from '../../util/tfjs.cjs';
import type { Config } from '../../config/defaults.js';
import { onHost, readView, tensorFrom } from '../../backend/view.js';
import { fusedKernels, type FusedKernels } from '../kernels/fused-wasm.js';

export type { FusedKernels };

/**
 * Whether this thread runs the fused WebAssembly kernels: parallel.kernels fused, tensors in this
 * thread's memory (wasm, cpu) and WebAssembly SIMD present. Otherwise the tfjs layers run.
 */
export function useFused(config: Config): boolean {
  return config.parallel.kernels === 'fused' && onHost() && fusedKernels() !== null;
}

/** The loaded kernels, arena reset for a new operation. */
export const kernels = (): FusedKernels => fusedKernels()!.reset();

/** Copies a float32 tensor into the kernels' memory; its pointer. */
export const put = (k: FusedKernels, t: tf.Tensor): number => k.put(readView(t));

/** A tensor of the n floats at p in the kernels' memory (copied out). */
export const take = (k: FusedKernels, p: number, shape: number[]): tf.Tensor =>
  tensorFrom(k.view(p, shape.reduce((a, b) => a * b, 1)), shape);

/** The op's gradient function signature in tf.customGrad, with the saved tensors typed. */
export type SaveFn = tf.GradSaveFunc;

/**
 * Runs f as one tf.customGrad node over `inputs`: f gets the inputs and a save function, and returns
 * the output and the gradient function, which returns one gradient per input.
 */
export function customOp(
  inputs: tf.Tensor[],
  f: (inputs: tf.Tensor[], save: SaveFn) => { value: tf.Tensor; grad: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] },
): tf.Tensor {
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const r = f(args as tf.Tensor[], save);
    return { value: r.value, gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => r.grad(dy as tf.Tensor, saved) };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(...inputs);
}

/** Whether a tape is recording (forward values kept only for a backward pass that will come). */
export const taping = (): boolean => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
