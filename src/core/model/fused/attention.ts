import tf from '../../util/tfjs.cjs';
import { causalAttention, type AttentionShape } from '../attention.js';
import { customOp, kernels, output, ptr } from './io.js';

/**
 * Causal multi-head self-attention on the fused kernels (kernels/attn.c): the same equations as
 * attention.ts, with every product as 4×8 register tiles of gemm.c that skip the masked half.
 *   S = Q·Kᵀ/√hd (j ≤ i),  P = softmax(S),  O = P·V
 *   dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dO ⊙ O))/√hd,  dQ = dS·K,  dK = dSᵀ·Q,  dV = Pᵀ·dO
 * qkv [B·T, 3·d] → [B·T, d]. Head sizes or sequence lengths that are not multiples of 8 take attention.ts.
 */
export function fusedAttention(qkv: tf.Tensor2D, shape: AttentionShape): tf.Tensor2D {
  const { batch: B, seqLen: T, heads: H } = shape;
  const d = qkv.shape[1] / 3;
  const hd = d / H;
  if (hd % 8 !== 0 || T % 8 !== 0) return causalAttention(qkv, shape);
  const N = B * T;
  return customOp([qkv], ([x], save) => {
    const k = kernels();
    const [o, lse] = [output(k, [N, d]), output(k, [B * H * T])];
    k.k.attn_fwd(ptr(k, x!), o.p, lse.p, B, T, H, hd, k.alloc(4 * T * hd + T * T + T));
    save([x!, o.t, lse.t]);
    return {
      value: o.t,
      grad: (dy, [sx, so, sl]) => {
        const q = kernels();
        const dqkv = output(q, [N, 3 * d]);
        q.k.attn_bwd(
          ptr(q, sx!), ptr(q, so!), ptr(q, sl!), ptr(q, dy), dqkv.p, B, T, H, hd, q.alloc(12 * T * hd + 2 * T * T),
        );
        return [dqkv.t];
      },
    };
  }) as tf.Tensor2D;
}
