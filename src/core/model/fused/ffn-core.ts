import type { Activation } from '../layers.js';
import type { FusedKernels } from './io.js';

/** The activations' numbers in kernels/act.c. */
export const ACT: Record<Activation, number> = { relu: 0, gelu: 1, swiglu: 2 };

/** An FFN's sizes: n rows of d, U = F columns of W1 (2F for swiglu: gate | up), F hidden units. */
export interface FfnDims {
  n: number;
  d: number;
  U: number;
  F: number;
  act: Activation;
}

export const ffnDims = (n: number, d: number, U: number, F: number, act: Activation): FfnDims => ({ n, d, U, F, act });

/**
 * o = act(x·W1 + b1)·W2 + b2 on operands already in the kernels' memory (pointers); returns the
 * pointers of o [n, d] and of the pre-activation a = x·W1 + b1 [n, U].
 */
export function ffnForwardAt(k: FusedKernels, p: { x: number; w1: number; b1: number; w2: number; b2: number }, s: FfnDims): { o: number; a: number } {
  const [a, h, o] = [k.alloc(s.n * s.U), k.alloc(s.n * s.F), k.alloc(s.n * s.d)];
  k.k.gemm(p.x, s.d, 1, p.w1, a, s.n, s.d, s.U, p.b1, 0);
  k.k.act_fwd(ACT[s.act], a, h, s.n, s.F);
  k.k.gemm(h, s.F, 1, p.w2, o, s.n, s.F, s.d, p.b2, 0);
  return { o, a };
}

/**
 * The FFN's backward from dO [n, d] (pointers in the kernels' memory), recomputing h = act(a):
 *   dW2 = hᵀ·dO,  db2 = Σ_rows dO,  dH = dO·W2ᵀ,  dA = dH ⊙ act′(a),  dW1 = xᵀ·dA,  db1 = Σ_rows dA,  dx = dA·W1ᵀ
 * Returns the gradients' pointers.
 */
export function ffnBackwardAt(
  k: FusedKernels, p: { x: number; w1: number; w2: number; a: number; dO: number }, s: FfnDims,
): { dx: number; w1: number; b1: number; w2: number; b2: number } {
  const { n, d, U, F } = s;
  const [h, dh, da, dx] = [k.alloc(n * F), k.alloc(n * F), k.alloc(n * U), k.alloc(n * d)];
  const [w2, b2, w1, b1, scratch] = [k.alloc(F * d), k.alloc(d), k.alloc(d * U), k.alloc(U), k.alloc(Math.max(F * d, d * U))];
  k.k.act_fwd(ACT[s.act], p.a, h, n, F);
  k.k.gemm(h, 1, F, p.dO, w2, F, n, d, 0, 0); // dW2 = hᵀ·dO
  k.k.col_sum(p.dO, b2, n, d, 0);
  k.k.gemm_nt(p.dO, p.w2, dh, n, d, F, scratch, 0); // dH = dO·W2ᵀ
  k.k.act_bwd(ACT[s.act], p.a, dh, da, n, F);
  k.k.gemm(p.x, 1, d, da, w1, d, n, U, 0, 0); // dW1 = xᵀ·dA
  k.k.col_sum(da, b1, n, U, 0);
  k.k.gemm_nt(da, p.w1, dx, n, U, d, scratch, 0); // dx = dA·W1ᵀ
  return { dx, w1, b1, w2, b2 };
}
