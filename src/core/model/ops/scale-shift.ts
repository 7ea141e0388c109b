import tf from '../../util/tfjs.cjs';
import { colSum } from './col-sum.js';

/**
 * y = x ⊙ g + b for x [N, C], g and b [C] (layer-norm gain and bias, linear bias), with its gradient:
 *   ∂L/∂x = dy ⊙ g,   ∂L/∂g = Σ_rows dy ⊙ x,   ∂L/∂b = Σ_rows dy
 * The row sums run as matmuls (colSum): tfjs's broadcast gradient would call the slow axis-0 Sum.
 * With g = undefined it is a plain bias add.
 */
export function scaleShift(x: tf.Tensor2D, g: tf.Tensor | undefined, b: tf.Tensor): tf.Tensor2D {
  const f = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const hasGain = g !== undefined;
    const xt = args[0] as tf.Tensor2D;
    const gt = hasGain ? (args[1] as tf.Tensor) : undefined;
    const bt = args[hasGain ? 2 : 1] as tf.Tensor;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    save(hasGain ? [xt, gt!] : []);
    const value = (gt ? xt.mul(gt) : xt).add(bt);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const d = dy as tf.Tensor2D;
        if (!hasGain) return [d.clone(), colSum(d)];
        const [xs, gs] = saved as [tf.Tensor2D, tf.Tensor];
        return [d.mul(gs), colSum(d.mul(xs) as tf.Tensor2D), colSum(d)];
      },
    };
  };
  const op = tf.customGrad(f as Parameters<typeof tf.customGrad>[0]);
  return (g ? op(x, g, b) : op(x, b)) as tf.Tensor2D;
}
