import type { Activation } from '../layers.js';
import { gemmNtScratch, gemmScratch } from '../kernels/fused-wasm.js';
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

/** Operand pointers of an FFN. */
export interface FfnAt {
  x: number;
  w1: number;
  b1: number;
  w2: number;
  b2: number;
}

/**
 * o = act(x·W1 + b1)·W2 + b2 on operands in the heap (pointers), into o [n, d]; the pre-activation
 * a = x·W1 + b1 [n, U] into `a` (h = act(a) is an arena temporary).
 */
export function ffnForwardAt(k: FusedKernels, p: FfnAt, s: FfnDims, out: { o: number; a: number }): void {
  const h = k.alloc(s.n * s.F), scratch = k.alloc(Math.max(gemmScratch(s.d, s.U), gemmScratch(s.F, s.d)));
  k.k.gemm(p.x, s.d, 1, p.w1, out.a, s.n, s.d, s.U, p.b1, 0, scratch);
  k.k.act_fwd(ACT[s.act], out.a, h, s.n, s.F);
  k.k.gemm(h, s.F, 1, p.w2, out.o, s.n, s.F, s.d, p.b2, 0, scratch);
}

/**
 * The FFN's backward from dO [n, d], recomputing h = act(a), into the gradients' pointers:
 *   dW2 = hᵀ·dO,  db2 = Σ_rows dO,  dH = dO·W2ᵀ,  dA = dH ⊙ act′(a),  dW1 = xᵀ·dA,  db1 = Σ_rows dA,  dx = dA·W1ᵀ
 */
export function ffnBackwardAt(
  k: FusedKernels, p: { x: number; w1: number; w2: number; a: number; dO: number }, s: FfnDims, g: FfnAt,
): void {
  const { n, d, U, F } = s;
  const scratchFloats = Math.max(gemmNtScratch(d, F), gemmNtScratch(U, d), gemmScratch(n, d), gemmScratch(n, U));
  const [h, dh, da, scratch] = [k.alloc(n * F), k.alloc(n * F), k.alloc(n * U), k.alloc(scratchFloats)];
  k.k.act_fwd(ACT[s.act], p.a, h, n, F);
  k.k.gemm(h, 1, F, p.dO, g.w2, F, n, d, 0, 0, scratch); // dW2 = hᵀ·dO
  k.k.col_sum(p.dO, g.b2, n, d, 0);
  k.k.gemm_nt(p.dO, p.w2, dh, n, d, F, scratch, 0); // dH = dO·W2ᵀ
  k.k.act_bwd(ACT[s.act], p.a, dh, da, n, F);
  k.k.gemm(p.x, 1, d, da, g.w1, d, n, U, 0, 0, scratch); // dW1 = xᵀ·dA
  k.k.col_sum(da, g.b1, n, U, 0);
  k.k.gemm_nt(da, p.w1, g.x, n, U, d, scratch, 0); // dx = dA·W1ᵀ
}
