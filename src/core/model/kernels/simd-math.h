// Shared by the fused kernels' sources: float type, and exp, tanh and σ on four lanes at once.
#pragma once
#include <wasm_simd128.h>

typedef float f32;

// a kernel the JavaScript side calls
#define EXPORT(name) __attribute__((export_name(#name)))

#define SPLAT(v) wasm_f32x4_splat(v)
#define ADD(a, b) wasm_f32x4_add(a, b)
#define SUB(a, b) wasm_f32x4_sub(a, b)
#define MUL(a, b) wasm_f32x4_mul(a, b)
#define DIV(a, b) wasm_f32x4_div(a, b)
#define LOAD(p) wasm_v128_load(p)
#define STORE(p, v) wasm_v128_store(p, v)

// a·b + c: one fused multiply-add where the build has relaxed SIMD (fused-fma.wasm; rounded once, or twice where
// the machine has no FMA), a multiply and an add otherwise (fused.wasm)
#ifdef RELAXED
typedef float f32x4_t __attribute__((vector_size(16)));
#define MADD(a, b, c) ((v128_t)__builtin_wasm_relaxed_madd_f32x4((f32x4_t)(a), (f32x4_t)(b), (f32x4_t)(c)))
#else
#define MADD(a, b, c) ADD(MUL(a, b), c)
#endif

// e^x = 2^k · e^r, k = round(x / ln 2), |r| ≤ ln2/2, degree-7 Taylor polynomial (rel. error < 1e-8 in r);
// x clamped to [-87, 88] (e^-87 ≈ 1.6e-38, still a normal float)
static inline v128_t exp4(v128_t x) {
  x = wasm_f32x4_pmax(wasm_f32x4_pmin(x, SPLAT(88.0f)), SPLAT(-87.0f));
  v128_t k = wasm_f32x4_nearest(MUL(x, SPLAT(1.4426950408889634f)));
  v128_t r = SUB(SUB(x, MUL(k, SPLAT(0.693145751953125f))), MUL(k, SPLAT(1.428606765330187e-06f)));
  v128_t p = ADD(SPLAT(1.0f / 720), MUL(r, SPLAT(1.0f / 5040)));
  p = ADD(SPLAT(1.0f / 120), MUL(r, p));
  p = ADD(SPLAT(1.0f / 24), MUL(r, p));
  p = ADD(SPLAT(1.0f / 6), MUL(r, p));
  p = ADD(SPLAT(0.5f), MUL(r, p));
  p = ADD(SPLAT(1.0f), MUL(r, p));
  p = ADD(SPLAT(1.0f), MUL(r, p));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(k), wasm_i32x4_splat(127)), 23);
  return MUL(p, scale);
}

// σ(x) = 1 / (1 + e^−x)
static inline v128_t sigmoid4(v128_t x) { return DIV(SPLAT(1.0f), ADD(SPLAT(1.0f), exp4(wasm_f32x4_neg(x)))); }

// tanh(x) = 1 − 2 / (e^{2x} + 1)
static inline v128_t tanh4(v128_t x) { return SUB(SPLAT(1.0f), DIV(SPLAT(2.0f), ADD(exp4(ADD(x, x)), SPLAT(1.0f)))); }

// lane 0 of a four-lane function, for the columns past the last multiple of 4
#define SCALAR(f, x) wasm_f32x4_extract_lane(f(SPLAT(x)), 0)

static inline f32 hmax4(v128_t v) {
  f32 a = wasm_f32x4_extract_lane(v, 0), b = wasm_f32x4_extract_lane(v, 1), c = wasm_f32x4_extract_lane(v, 2), d = wasm_f32x4_extract_lane(v, 3);
  a = a > b ? a : b;
  c = c > d ? c : d;
  return a > c ? a : c;
}

static inline f32 hsum4(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

// ln x for x > 0: x = m·2^e, m in [1/√2, √2); ln m by the atanh series in t = (m−1)/(m+1)
static inline f32 log_f(f32 x) {
  union { unsigned u; f32 f; } v = { .f = x };
  int e = (int)((v.u >> 23) & 255) - 127;
  v.u = (v.u & 0x007fffff) | 0x3f800000;
  f32 m = v.f;
  if (m > 1.41421356f) { m *= 0.5f; e += 1; }
  f32 t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
  f32 s = t * (2.0f + t2 * (2.0f / 3 + t2 * (2.0f / 5 + t2 * (2.0f / 7 + t2 * (2.0f / 9 + t2 * (2.0f / 11))))));
  return s + (f32)e * 0.6931471805599453f;
}

// gemm.c's tile: C[rows, 8] (=|+=) Σ_{r<R} a(i, r) · B[r, 0..8) (+ bias), a(i, r) = A[i·sa + r·sr], rows 4 or 1
void tile8(const f32 *A, int sa, int sr, const f32 *B, int ldb, f32 *C, int ldc, int rows, int R, const f32 *bias, int acc);
