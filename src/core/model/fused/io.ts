import tf from '../../util/tfjs.cjs';
import type { Config } from '../../config/defaults.js';
import { fusedKernels, type FusedKernels } from '../kernels/fused-wasm.js';

export type { FusedKernels };

/**
 * Whether this thread runs the fused WebAssembly kernels: parallel.kernels fused on the tfjs wasm backend
 * (whose heap they share) with WebAssembly SIMD. Otherwise (cpu, GPU backends) the tfjs layers run.
 */
export function useFused(config: Config): boolean {
  return config.parallel.kernels === 'fused' && tf.getBackend() === 'wasm' && fusedKernels() !== null;
}

/** The loaded kernels, arena reset for a new operation. */
export const kernels = (): FusedKernels => fusedKernels()!.reset();

/** Where a tensor's values are (the kernels read them in place). */
export const ptr = (k: FusedKernels, t: tf.Tensor): number => k.ptr(t);

/** A new tensor of this shape for a kernel to write, and its pointer. */
export const output = (k: FusedKernels, shape: number[]): { t: tf.Tensor; p: number } => k.output(shape);

/** The op's gradient function signature in tf.customGrad, with the saved tensors typed. */
export type SaveFn = tf.GradSaveFunc;

/**
 * Runs f as one tf.customGrad node over `inputs`: f gets the inputs and a save function, and returns
 * the output and the gradient function, which returns one gradient per input.
 */
export function customOp(
  inputs: tf.Tensor[],
  f: (
    inputs: tf.Tensor[], save: SaveFn,
  ) => { value: tf.Tensor; grad: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] },
): tf.Tensor {
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const r = f(args as tf.Tensor[], save);
    return {
      value: r.value, gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => r.grad(dy as tf.Tensor, saved),
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(...inputs);
}

/** Whether a tape is recording (forward values kept only for a backward pass that will come). */
export const taping = (): boolean => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
