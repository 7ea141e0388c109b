// Fused causal multi-head self-attention, forward and backward, for WebAssembly SIMD (wasm32 +simd128).
// Built by scripts/build-kernels.sh into attention.wasm (committed); attention-wasm.ts loads it.
//
// Layout: qkv is [B·T, 3·D] row-major, the projection's output: q at column h·hd, k at D + h·hd,
// v at 2D + h·hd. o and dO are [B·T, D]; lse is [B, H, T]; dqkv is [B·T, 3·D]. hd must be a multiple of 4.
//   S = Q·Kᵀ/√hd (j ≤ i), P = softmax(S), O = P·V
//   dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)), dQ = dS·K/√hd, dK = dSᵀ·Q/√hd, dV = Pᵀ·dO
#include "simd-math.h"


// exp by range reduction: e^x = 2^k · e^r, |r| ≤ ln2/2, degree-7 Taylor polynomial (rel. error < 2e-8 in r)
static f32 exp_f(f32 x) {
  if (x < -87.0f) return 0.0f;
  const f32 LN2 = 0.6931471805599453f;
  f32 kf = __builtin_floorf(x / LN2 + 0.5f);
  f32 r = x - kf * LN2;
  f32 p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  int k = (int)kf;
  union { unsigned u; f32 f; } s;
  s.u = (unsigned)(k + 127) << 23;
  return p * s.f;
}

// s[j] = scale · ⟨a, b_j⟩ for rows b_0..b_{n−1} of a [n, hd] block
static void dots(const f32 *a, const f32 *b, int n, int hd, f32 scale, f32 *s) {
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const f32 *b0 = b + j * hd, *b1 = b0 + hd, *b2 = b1 + hd, *b3 = b2 + hd;
    v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
    for (int c = 0; c < hd; c += 4) {
      v128_t x = wasm_v128_load(a + c);
      s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(x, wasm_v128_load(b0 + c)));
      s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(x, wasm_v128_load(b1 + c)));
      s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(x, wasm_v128_load(b2 + c)));
      s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(x, wasm_v128_load(b3 + c)));
    }
    s[j] = hsum4(s0) * scale; s[j + 1] = hsum4(s1) * scale; s[j + 2] = hsum4(s2) * scale; s[j + 3] = hsum4(s3) * scale;
  }
  for (; j < n; j++) {
    v128_t acc = wasm_f32x4_splat(0);
    for (int c = 0; c < hd; c += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + c), wasm_v128_load(b + j * hd + c)));
    s[j] = hsum4(acc) * scale;
  }
}

// out += Σ_j w[j] · b_j over rows b_0..b_{n−1}
static void combine_rows(const f32 *w, const f32 *b, int n, int hd, f32 *out) {
  for (int c = 0; c < hd; c += 4) {
    v128_t acc = wasm_v128_load(out + c);
    for (int j = 0; j < n; j++) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(w[j]), wasm_v128_load(b + j * hd + c)));
    wasm_v128_store(out + c, acc);
  }
}

static void gather(const f32 *src, int stride, int T, int hd, f32 *dst) {
  for (int t = 0; t < T; t++)
    for (int c = 0; c < hd; c += 4) wasm_v128_store(dst + t * hd + c, wasm_v128_load(src + t * stride + c));
}

// one head of Q, K and V from the fused qkv rows of one sequence
static void gather_qkv(const f32 *base, int D, int T, int hd, f32 *qh, f32 *kh, f32 *vh) {
  gather(base, 3 * D, T, hd, qh);
  gather(base + D, 3 * D, T, hd, kh);
  gather(base + 2 * D, 3 * D, T, hd, vh);
}

static void scatter(const f32 *src, int T, int hd, f32 *dst, int stride) {
  for (int t = 0; t < T; t++)
    for (int c = 0; c < hd; c += 4) wasm_v128_store(dst + t * stride + c, wasm_v128_load(src + t * hd + c));
}

// scratch: 4·T·hd + T floats
void attention_forward(const f32 *qkv, f32 *o, f32 *lse, int B, int T, int H, int hd, f32 *scratch) {
  const int D = H * hd, S3 = 3 * D;
  const f32 scale = 1.0f / __builtin_sqrtf((f32)hd);
  f32 *qh = scratch, *kh = qh + T * hd, *vh = kh + T * hd, *oh = vh + T * hd, *p = oh + T * hd;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      gather_qkv(qkv + (long)b * T * S3 + h * hd, D, T, hd, qh, kh, vh);
      for (int i = 0; i < T; i++) {
        int n = i + 1;
        dots(qh + i * hd, kh, n, hd, scale, p);
        f32 m = p[0];
        for (int j = 1; j < n; j++) if (p[j] > m) m = p[j];
        f32 l = 0;
        for (int j = 0; j < n; j++) { p[j] = exp_f(p[j] - m); l += p[j]; }
        f32 inv = 1.0f / l;
        for (int j = 0; j < n; j++) p[j] *= inv;
        for (int c = 0; c < hd; c++) oh[i * hd + c] = 0;
        combine_rows(p, vh, n, hd, oh + i * hd);
        lse[(b * H + h) * T + i] = m + log_f(l);
      }
      scatter(oh, T, hd, o + (long)b * T * D + h * hd, D);
    }
}

// scratch: 8·T·hd + 2·T·T + 2·T floats
void attention_backward(const f32 *qkv, const f32 *o, const f32 *lse, const f32 *dO, f32 *dqkv, int B, int T, int H, int hd, f32 *scratch) {
  const int D = H * hd, S3 = 3 * D;
  const f32 scale = 1.0f / __builtin_sqrtf((f32)hd);
  f32 *qh = scratch, *kh = qh + T * hd, *vh = kh + T * hd, *oh = vh + T * hd, *gh = oh + T * hd;
  f32 *dqh = gh + T * hd, *dkh = dqh + T * hd, *dvh = dkh + T * hd;
  f32 *Pt = dvh + T * hd, *dSt = Pt + T * T, *P = dSt + T * T, *dS = P + T;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      gather_qkv(qkv + (long)b * T * S3 + h * hd, D, T, hd, qh, kh, vh);
      gather(o + (long)b * T * D + h * hd, D, T, hd, oh);
      gather(dO + (long)b * T * D + h * hd, D, T, hd, gh);
      for (int x = 0; x < 3 * T * hd; x++) dqh[x] = 0; // dqh, dkh, dvh are contiguous
      for (int i = 0; i < T; i++) {
        int n = i + 1;
        const f32 *qi = qh + i * hd, *gi = gh + i * hd;
        f32 rowLse = lse[(b * H + h) * T + i];
        v128_t acc = wasm_f32x4_splat(0);
        for (int c = 0; c < hd; c += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(gi + c), wasm_v128_load(oh + i * hd + c)));
        f32 Di = hsum4(acc);
        dots(qi, kh, n, hd, scale, P);
        dots(gi, vh, n, hd, 1.0f, dS);
        for (int j = 0; j < n; j++) {
          f32 pj = exp_f(P[j] - rowLse);
          f32 ds = pj * (dS[j] - Di) * scale;
          dS[j] = ds;
          Pt[j * T + i] = pj;
          dSt[j * T + i] = ds;
        }
        combine_rows(dS, kh, n, hd, dqh + i * hd);
      }
      for (int j = 0; j < T; j++) {
        combine_rows(dSt + j * T + j, qh + j * hd, T - j, hd, dkh + j * hd);
        combine_rows(Pt + j * T + j, gh + j * hd, T - j, hd, dvh + j * hd);
      }
      f32 *out = dqkv + (long)b * T * S3 + h * hd;
      scatter(dqh, T, hd, out, S3);
      scatter(dkh, T, hd, out + D, S3);
      scatter(dvh, T, hd, out + 2 * D, S3);
    }
}
