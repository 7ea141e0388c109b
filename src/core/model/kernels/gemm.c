// Matrix products for the fused kernels (WebAssembly SIMD, wasm32 +simd128), one register-blocked loop
// for every layout the forward and backward passes need. Built with the rest of fused.wasm by
// scripts/build-kernels.sh. Row-major throughout; four rows by eight columns of C per tile, B copied into panels of
// eight columns first (pack8).
//
//   C[M,N] (=|+=) Σ_r a(i, r) · B[r, j] (+ bias[j]),   a(i, r) = A[i·sa + r·sr]
//   y = x·W + b      gemm(x, K, 1, W, ...)        (sa = K, sr = 1)
//   dW += xᵀ·dY      gemm(x, 1, K, dY, ...)       (sa = 1, sr = K: x read down its columns)
//   dX = dY·Wᵀ       transpose W first (gemm_nt): B must run along its rows
#include "simd-math.h"

static inline void store8(f32 *c, v128_t o0, v128_t o1, v128_t bias0, v128_t bias1, int acc) {
  o0 = wasm_f32x4_add(o0, bias0);
  o1 = wasm_f32x4_add(o1, bias1);
  if (acc) { o0 = wasm_f32x4_add(o0, wasm_v128_load(c)); o1 = wasm_f32x4_add(o1, wasm_v128_load(c + 4)); }
  wasm_v128_store(c, o0);
  wasm_v128_store(c + 4, o1);
}

// one tile of 4 rows (rows = 4) or 1 row, 8 columns
void tile8(const f32 *A, int sa, int sr, const f32 *B, int ldb, f32 *C, int ldc, int rows, int R, const f32 *bias,
           int acc) {
  v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const f32 *a0 = A, *a1 = A + sa, *a2 = A + 2 * sa, *a3 = A + 3 * sa;
  if (rows == 4) {
    for (int r = 0; r < R; r++) {
      const f32 *b = B + (long)r * ldb;
      v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
      v128_t x = wasm_f32x4_splat(a0[r * sr]);
      c00 = MADD(x, b0, c00); c01 = MADD(x, b1, c01);
      x = wasm_f32x4_splat(a1[r * sr]);
      c10 = MADD(x, b0, c10); c11 = MADD(x, b1, c11);
      x = wasm_f32x4_splat(a2[r * sr]);
      c20 = MADD(x, b0, c20); c21 = MADD(x, b1, c21);
      x = wasm_f32x4_splat(a3[r * sr]);
      c30 = MADD(x, b0, c30); c31 = MADD(x, b1, c31);
    }
  } else {
    for (int r = 0; r < R; r++) {
      const f32 *b = B + (long)r * ldb;
      v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
      v128_t x = wasm_f32x4_splat(a0[r * sr]);
      c00 = MADD(x, b0, c00); c01 = MADD(x, b1, c01);
    }
  }
  v128_t bias0 = bias ? wasm_v128_load(bias) : wasm_f32x4_splat(0), bias1 = bias ? wasm_v128_load(bias + 4) : bias0;
  store8(C, c00, c01, bias0, bias1, acc);
  if (rows == 1) return;
  store8(C + ldc, c10, c11, bias0, bias1, acc);
  store8(C + 2 * ldc, c20, c21, bias0, bias1, acc);
  store8(C + 3 * ldc, c30, c31, bias0, bias1, acc);
}

// columns past the last multiple of 8: one at a time
static void tail_col(const f32 *A, int sa, int sr, const f32 *B, int ldb, f32 *C, int ldc, int M, int R,
                     const f32 *bias, int acc) {
  for (int i = 0; i < M; i++) {
    f32 s = 0;
    for (int r = 0; r < R; r++) s += A[(long)i * sa + r * sr] * B[(long)r * ldb];
    if (bias) s += bias[0];
    C[(long)i * ldc] = acc ? C[(long)i * ldc] + s : s;
  }
}

// Blocks of the loops: MB rows of C at a time (their rows of A stay in cache across B's column panels), and
// RB of the R reduction steps at a time (their rows of B stay in cache across the row tiles), the later ones
// added to what the first left in C.
#define MB 64
#define RB 256

// B's block of rows [rn, N] into panels of 8 columns, each [rn, 8] contiguous (P + p·rn·8): a tile then reads
// one run of memory instead of rows N floats apart (which, N a multiple of 128, fall on a few cache sets)
static void pack8(const f32 *B, int ldb, int rn, int N8, f32 *P) {
  for (int j = 0; j < N8; j += 8) {
    f32 *p = P + (long)j * rn;
    for (int r = 0; r < rn; r++) {
      const f32 *b = B + (long)r * ldb + j;
      wasm_v128_store(p + r * 8, wasm_v128_load(b));
      wasm_v128_store(p + r * 8 + 4, wasm_v128_load(b + 4));
    }
  }
}

// scratch: min(R, RB)·N floats (B's panels)
EXPORT(gemm) void gemm(const f32 *A, int sa, int sr, const f32 *B, f32 *C, int M, int R, int N, const f32 *bias,
                       int acc, f32 *scratch) {
  int N8 = N & ~7;
  for (int r0 = 0; r0 < R; r0 += RB) {
    int rn = R - r0 < RB ? R - r0 : RB, a = acc || r0 > 0;
    const f32 *Ar = A + (long)r0 * sr, *Br = B + (long)r0 * N, *b = r0 == 0 ? bias : 0;
    pack8(Br, N, rn, N8, scratch);
    for (int i0 = 0; i0 < M; i0 += MB) {
      int im = M - i0 < MB ? M : i0 + MB;
      for (int j = 0; j < N8; j += 8) {
        const f32 *P = scratch + (long)j * rn;
        int i = i0;
        const f32 *bj = b ? b + j : 0;
        for (; i + 4 <= im; i += 4) tile8(Ar + (long)i * sa, sa, sr, P, 8, C + (long)i * N + j, N, 4, rn, bj, a);
        for (; i < im; i++) tile8(Ar + (long)i * sa, sa, sr, P, 8, C + (long)i * N + j, N, 1, rn, bj, a);
      }
      for (int j = N8; j < N; j++)
        tail_col(Ar + (long)i0 * sa, sa, sr, Br + j, N, C + (long)i0 * N + j, N, im - i0, rn, b ? b + j : 0, a);
    }
  }
}

// Bᵀ of B [R, N] into T [N, R]
EXPORT(transpose) void transpose(const f32 *B, f32 *T, int R, int N) {
  for (int r0 = 0; r0 < R; r0 += 16)
    for (int j0 = 0; j0 < N; j0 += 16)
      for (int r = r0; r < R && r < r0 + 16; r++)
        for (int j = j0; j < N && j < j0 + 16; j++) T[(long)j * R + r] = B[(long)r * N + j];
}

// C[M,K] (=|+=) G[M,N]·W[K,N]ᵀ, through a transposed copy of W in scratch: K·N + min(N, RB)·K floats
EXPORT(gemm_nt) void gemm_nt(const f32 *G, const f32 *W, f32 *C, int M, int N, int K, f32 *scratch, int acc) {
  transpose(W, scratch, K, N);
  gemm(G, N, 1, scratch, C, M, N, K, 0, acc, scratch + (long)K * N);
}

// out[N] (=|+=) Σ_i G[i, ·] over M rows, each column's sum in row order (out, + G[0, j], + G[1, j], …): 32
// columns at a time held in registers over CB rows (out read and written once per CB rows, not per row)
#define CB 64
EXPORT(col_sum) void col_sum(const f32 *G, f32 *out, int M, int N, int acc) {
  if (!acc) for (int j = 0; j < N; j++) out[j] = 0;
  int N4 = N & ~3;
  for (int i0 = 0; i0 < M; i0 += CB) {
    int im = M - i0 < CB ? M : i0 + CB, j = 0;
    for (; j + 32 <= N4; j += 32) {
      v128_t s[8];
#pragma unroll
      for (int v = 0; v < 8; v++) s[v] = LOAD(out + j + 4 * v);
      for (int i = i0; i < im; i++) {
        const f32 *g = G + (long)i * N + j;
#pragma unroll
        for (int v = 0; v < 8; v++) s[v] = ADD(s[v], LOAD(g + 4 * v));
      }
#pragma unroll
      for (int v = 0; v < 8; v++) STORE(out + j + 4 * v, s[v]);
    }
    for (; j < N4; j += 4) {
      v128_t s = LOAD(out + j);
      for (int i = i0; i < im; i++) s = ADD(s, LOAD(G + (long)i * N + j));
      STORE(out + j, s);
    }
    for (; j < N; j++) {
      f32 s = out[j];
      for (int i = i0; i < im; i++) s += G[(long)i * N + j];
      out[j] = s;
    }
  }
}
