// Causal multi-head self-attention from the fused projection, forward and backward, as tiles of gemm.c
// (WebAssembly SIMD; part of fused.wasm): per sequence and head, the products run 4 rows by 8 columns at a
// time and skip the tiles above the diagonal. Needs hd % 8 = 0 and T % 8 = 0 (attention.c otherwise).
//   S = Q·Kᵀ/√hd (j ≤ i),  P = softmax(S),  O = P·V
//   dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dO ⊙ O))/√hd,  dQ = dS·K,  dK = dSᵀ·Q,  dV = Pᵀ·dO
// qkv [B·T, 3·D] (q | k | v, head h at column h·hd of each); o, dO [B·T, D]; lse [B, H, T]; D = H·hd.
#include "simd-math.h"

static void gather(const f32 *src, int stride, int T, int hd, f32 *dst) {
  for (int t = 0; t < T; t++)
    for (int c = 0; c < hd; c += 4) STORE(dst + t * hd + c, LOAD(src + (long)t * stride + c));
}
static void gather_t(const f32 *src, int stride, int T, int hd, f32 *dst) { // dst [hd, T]
  for (int t = 0; t < T; t++)
    for (int c = 0; c < hd; c++) dst[c * T + t] = src[(long)t * stride + c];
}
static void scatter(const f32 *src, int T, int hd, f32 *dst, int stride) {
  for (int t = 0; t < T; t++)
    for (int c = 0; c < hd; c += 4) STORE(dst + (long)t * stride + c, LOAD(src + t * hd + c));
}

// C[T, T] = A[T, hd]·Bt[hd, T] on the tiles that touch j ≤ i
static void lower_product(const f32 *A, const f32 *Bt, f32 *C, int T, int hd) {
  for (int i0 = 0; i0 < T; i0 += 4)
    for (int j0 = 0; j0 <= i0 + 3 && j0 < T; j0 += 8) tile8(A + i0 * hd, hd, 1, Bt + j0, T, C + i0 * T + j0, T, 4, hd, 0, 0);
}

// out[T, hd] = L·X for L [T, T] zero above the diagonal: row tile i0 sums rows r ≤ i0 + 3 of X
static void lower_times(const f32 *L, const f32 *X, f32 *out, int T, int hd) {
  for (int i0 = 0; i0 < T; i0 += 4)
    for (int c = 0; c < hd; c += 8) tile8(L + i0 * T, T, 1, X + c, hd, out + i0 * hd + c, hd, 4, i0 + 4, 0, 0);
}

// out[T, hd] = Lᵀ·X for L [T, T] zero above the diagonal: row j of Lᵀ sums rows r ≥ j0 of X
static void lower_t_times(const f32 *L, const f32 *X, f32 *out, int T, int hd) {
  for (int j0 = 0; j0 < T; j0 += 4)
    for (int c = 0; c < hd; c += 8) tile8(L + j0 * T + j0, 1, T, X + j0 * hd + c, hd, out + j0 * hd + c, hd, 4, T - j0, 0, 0);
}

// zeros row i of a [T, T] tile matrix from column i + 1 to the end of its 8-column tile
static void zero_above(f32 *row, int i, int T) {
  int end = (i + 8) & ~7;
  for (int j = i + 1; j < end && j < T; j++) row[j] = 0;
}

// scratch: 4·T·hd + T·T + T floats
EXPORT(attn_fwd) void attn_fwd(const f32 *qkv, f32 *o, f32 *lse, int B, int T, int H, int hd, f32 *scratch) {
  const int D = H * hd, S3 = 3 * D;
  const f32 scale = 1.0f / __builtin_sqrtf((f32)hd);
  f32 *qh = scratch, *kt = qh + T * hd, *vh = kt + T * hd, *oh = vh + T * hd, *P = oh + T * hd, *inv = P + T * T;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const f32 *base = qkv + (long)b * T * S3 + h * hd;
      gather(base, S3, T, hd, qh);
      gather_t(base + D, S3, T, hd, kt);
      gather(base + 2 * D, S3, T, hd, vh);
      lower_product(qh, kt, P, T, hd);
      for (int i = 0; i < T; i++) {
        f32 *row = P + i * T;
        int n = i + 1;
        int n4 = n & ~3;
        v128_t sc = SPLAT(scale), mx = SPLAT(-3.0e38f);
        for (int j = 0; j < n4; j += 4) {
          v128_t v = MUL(LOAD(row + j), sc);
          STORE(row + j, v);
          mx = wasm_f32x4_pmax(mx, v);
        }
        f32 m = hmax4(mx);
        for (int j = n4; j < n; j++) { row[j] *= scale; if (row[j] > m) m = row[j]; }
        v128_t s4 = SPLAT(0), m4 = SPLAT(m);
        for (int j = 0; j < n4; j += 4) { v128_t e = exp4(SUB(LOAD(row + j), m4)); STORE(row + j, e); s4 = ADD(s4, e); }
        f32 l = hsum4(s4);
        for (int j = n4; j < n; j++) l += (row[j] = SCALAR(exp4, row[j] - m));
        zero_above(row, i, T);
        inv[i] = 1.0f / l; // P's rows are normalised on O = P·V, T·hd values instead of T·T
        lse[(b * H + h) * T + i] = m + log_f(l);
      }
      lower_times(P, vh, oh, T, hd);
      for (int i = 0; i < T; i++)
        for (int c = 0; c < hd; c += 4) STORE(oh + i * hd + c, MUL(LOAD(oh + i * hd + c), SPLAT(inv[i])));
      scatter(oh, T, hd, o + (long)b * T * D + h * hd, D);
    }
}

// scratch: 12·T·hd + 2·T·T floats
EXPORT(attn_bwd) void attn_bwd(const f32 *qkv, const f32 *o, const f32 *lse, const f32 *dO, f32 *dqkv, int B, int T, int H, int hd, f32 *scratch) {
  const int D = H * hd, S3 = 3 * D, n = T * hd;
  const f32 scale = 1.0f / __builtin_sqrtf((f32)hd);
  f32 *qh = scratch, *kh = qh + n, *kt = kh + n, *vt = kt + n, *oh = vt + n, *gh = oh + n;
  f32 *dq = gh + n, *dk = dq + n, *dv = dk + n, *P = dv + n, *dS = P + T * T;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const f32 *base = qkv + (long)b * T * S3 + h * hd;
      gather(base, S3, T, hd, qh);
      gather(base + D, S3, T, hd, kh);
      gather_t(base + D, S3, T, hd, kt);
      gather_t(base + 2 * D, S3, T, hd, vt);
      gather(o + (long)b * T * D + h * hd, D, T, hd, oh);
      gather(dO + (long)b * T * D + h * hd, D, T, hd, gh);
      lower_product(qh, kt, P, T, hd);  // S·√hd
      lower_product(gh, vt, dS, T, hd); // dP
      for (int i = 0; i < T; i++) {
        f32 *p = P + i * T, *ds = dS + i * T;
        v128_t acc = SPLAT(0);
        for (int c = 0; c < hd; c += 4) acc = ADD(acc, MUL(LOAD(gh + i * hd + c), LOAD(oh + i * hd + c)));
        f32 Di = hsum4(acc), rowLse = lse[(b * H + h) * T + i];
        int m = i + 1, m4 = m & ~3;
        v128_t sc = SPLAT(scale), l4 = SPLAT(rowLse), d4 = SPLAT(Di);
        for (int j = 0; j < m4; j += 4) {
          v128_t pj = exp4(SUB(MUL(LOAD(p + j), sc), l4));
          STORE(p + j, pj);
          STORE(ds + j, MUL(MUL(pj, SUB(LOAD(ds + j), d4)), sc));
        }
        for (int j = m4; j < m; j++) {
          f32 pj = SCALAR(exp4, p[j] * scale - rowLse);
          p[j] = pj;
          ds[j] = pj * (ds[j] - Di) * scale;
        }
        zero_above(p, i, T);
        zero_above(ds, i, T);
      }
      lower_times(dS, kh, dq, T, hd);   // dQ = dS·K
      lower_t_times(dS, qh, dk, T, hd); // dK = dSᵀ·Q
      lower_t_times(P, gh, dv, T, hd);  // dV = Pᵀ·dO
      f32 *out = dqkv + (long)b * T * S3 + h * hd;
      scatter(dq, T, hd, out, S3);
      scatter(dk, T, hd, out + D, S3);
      scatter(dv, T, hd, out + 2 * D, S3);
    }
}
