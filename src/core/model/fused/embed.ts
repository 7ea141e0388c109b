import tf from '../../util/tfjs.cjs';
import { customOp, kernels, put, take } from './io.js';
import { maskedGrad } from './linear.js';

/**
 * h₀ = (wte[x] + wpe[t]) ⊙ m, the embedding lookup as one fused operation (kernels/xent.c):
 * a row gather (the tfjs path multiplies by a one-hot matrix instead; the values are the same).
 * Backward, with dH = dh ⊙ m:  dwte[v] = Σ_{x_{b,t} = v} dH_{b,t},  dwpe[t] = Σ_b dH_{b,t}.
 * tokens [B·T] int32 → [B·T, d]; the token ids are constants.
 */
export function fusedEmbed(tokens: tf.Tensor1D, wte: tf.Tensor, wpe: tf.Tensor, batch: number, mask?: tf.Tensor): tf.Tensor2D {
  const ids = tokens.dataSync() as Int32Array;
  const N = ids.length;
  const T = N / batch;
  const [V, d] = wte.shape as [number, number];
  const P = wpe.shape[0]!;
  return customOp([wte, wpe], ([we, wp], save) => {
    const k = kernels();
    const [pt, pe, pp, ph] = [k.putInts(ids), put(k, we!), put(k, wp!), k.alloc(N * d)];
    k.k.embed_fwd(pt, pe, pp, ph, batch, T, d);
    if (mask) k.k.mul(ph, put(k, mask), ph, N * d);
    save(mask ? [mask] : []);
    return {
      value: take(k, ph, [N, d]),
      grad: (dy, [sm]) => {
        const q = kernels();
        const pd = maskedGrad(q, dy, sm);
        const [qt, dwe, dwp] = [q.putInts(ids), q.zeros(V * d), q.zeros(P * d)];
        q.k.embed_bwd(qt, pd, dwe, dwp, batch, T, d);
        return [take(q, dwe, [V, d]), take(q, dwp, [P, d])];
      },
    };
  }) as tf.Tensor2D;
}
