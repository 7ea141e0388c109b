import tf from '../../util/tfjs.cjs';
import { customOp, kernels, output, ptr } from './io.js';
import { maskedGrad } from './linear.js';

/**
 * h₀ = (wte[x] + wpe[t]) ⊙ m, the embedding lookup as one fused operation (kernels/xent.c):
 * a row gather (the tfjs path multiplies by a one-hot matrix instead; the values are the same).
 * Backward, with dH = dh ⊙ m:  dwte[v] = Σ_{x_{b,t} = v} dH_{b,t},  dwpe[t] = Σ_b dH_{b,t}.
 * tokens [B·T] int32 → [B·T, d]; the token ids are constants.
 */
export function fusedEmbed(
  tokens: tf.Tensor1D, wte: tf.Tensor, wpe: tf.Tensor, batch: number, mask?: tf.Tensor,
): tf.Tensor2D {
  const N = tokens.shape[0];
  const T = N / batch;
  const [V, d] = wte.shape as [number, number];
  const P = wpe.shape[0]!;
  return customOp([wte, wpe], ([we, wp], save) => {
    const k = kernels();
    const h = output(k, [N, d]);
    k.k.embed_fwd(ptr(k, tokens), ptr(k, we!), ptr(k, wp!), h.p, batch, T, d);
    if (mask) k.k.mul(h.p, ptr(k, mask), h.p, N * d);
    save([tokens, ...(mask ? [mask] : [])]);
    return {
      value: h.t,
      grad: (dy, [ids, sm]) => {
        const q = kernels();
        const pd = maskedGrad(q, dy, sm);
        const [dwe, dwp] = [output(q, [V, d]), output(q, [P, d])];
        q.zero(dwe.p, V * d);
        q.zero(dwp.p, P * d);
        q.k.embed_bwd(ptr(q, ids!), pd, dwe.p, dwp.p, batch, T, d);
        return [dwe.t, dwp.t];
      },
    };
  }) as tf.Tensor2D;
}
