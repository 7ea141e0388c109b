// FFN activations and the elementwise glue of the fused blocks (WebAssembly SIMD; part of fused.wasm).
//   relu    h = max(a, 0)                                   da = dh · 1[a > 0]
//   gelu    h = ½a(1 + tanh(√(2/π)(a + 0.044715a³)))        da = dh · (½(1 + t) + ½a(1 − t²)·√(2/π)(1 + 3·0.044715a²))
//   swiglu  a = [a_g | a_u] (2F columns), h = silu(a_g) ⊙ a_u, silu(v) = v·σ(v)
//           da = [dh ⊙ a_u ⊙ σ(a_g)(1 + a_g(1 − σ(a_g))) | dh ⊙ silu(a_g)]
#include "simd-math.h"

enum { RELU = 0, GELU = 1, SWIGLU = 2 };
#define GELU_C 0.7978845608028654f
#define GELU_K 0.044715f

static inline v128_t gelu_t(v128_t a) { return tanh4(MUL(SPLAT(GELU_C), ADD(a, MUL(SPLAT(GELU_K), MUL(a, MUL(a, a)))))); }

static inline v128_t act4(int kind, v128_t a) {
  if (kind == RELU) return wasm_f32x4_pmax(a, SPLAT(0));
  return MUL(MUL(a, SPLAT(0.5f)), ADD(gelu_t(a), SPLAT(1.0f)));
}

static inline v128_t dact4(int kind, v128_t a) {
  if (kind == RELU) return wasm_v128_and(wasm_f32x4_gt(a, SPLAT(0)), SPLAT(1.0f));
  v128_t t = gelu_t(a);
  v128_t dt = MUL(SUB(SPLAT(1.0f), MUL(t, t)), MUL(ADD(SPLAT(1.0f), MUL(MUL(a, a), SPLAT(3 * GELU_K))), SPLAT(GELU_C)));
  return ADD(MUL(ADD(t, SPLAT(1.0f)), SPLAT(0.5f)), MUL(MUL(a, SPLAT(0.5f)), dt));
}

// lane 0, for the columns past the last multiple of 4
#define LANE0(v) wasm_f32x4_extract_lane(v, 0)

static inline v128_t swiglu4(v128_t g, v128_t u) { return MUL(MUL(g, sigmoid4(g)), u); }

// h [N, F] from a [N, F] (relu, gelu) or [N, 2F] (swiglu)
EXPORT(act_fwd) void act_fwd(int kind, const f32 *a, f32 *h, int N, int F) {
  int W = kind == SWIGLU ? 2 * F : F, F4 = F & ~3;
  for (int i = 0; i < N; i++) {
    const f32 *ai = a + (long)i * W;
    f32 *hi = h + (long)i * F;
    if (kind == SWIGLU) {
      for (int c = 0; c < F4; c += 4) STORE(hi + c, swiglu4(LOAD(ai + c), LOAD(ai + F + c)));
      for (int c = F4; c < F; c++) hi[c] = LANE0(swiglu4(SPLAT(ai[c]), SPLAT(ai[F + c])));
    } else {
      for (int c = 0; c < F4; c += 4) STORE(hi + c, act4(kind, LOAD(ai + c)));
      for (int c = F4; c < F; c++) hi[c] = LANE0(act4(kind, SPLAT(ai[c])));
    }
  }
}

// [da_g | da_u] of swiglu for four columns
static inline void dswiglu4(v128_t g, v128_t u, v128_t d, v128_t *dg, v128_t *du) {
  v128_t s = sigmoid4(g);
  *dg = MUL(MUL(d, u), MUL(s, ADD(MUL(g, SUB(SPLAT(1.0f), s)), SPLAT(1.0f))));
  *du = MUL(d, MUL(g, s));
}

// da (shape of a) from dh [N, F]
EXPORT(act_bwd) void act_bwd(int kind, const f32 *a, const f32 *dh, f32 *da, int N, int F) {
  int W = kind == SWIGLU ? 2 * F : F, F4 = F & ~3;
  for (int i = 0; i < N; i++) {
    const f32 *ai = a + (long)i * W, *dhi = dh + (long)i * F;
    f32 *dai = da + (long)i * W;
    v128_t dg, du;
    if (kind == SWIGLU) {
      for (int c = 0; c < F4; c += 4) {
        dswiglu4(LOAD(ai + c), LOAD(ai + F + c), LOAD(dhi + c), &dg, &du);
        STORE(dai + c, dg);
        STORE(dai + F + c, du);
      }
      for (int c = F4; c < F; c++) {
        dswiglu4(SPLAT(ai[c]), SPLAT(ai[F + c]), SPLAT(dhi[c]), &dg, &du);
        dai[c] = LANE0(dg);
        dai[F + c] = LANE0(du);
      }
    } else {
      for (int c = 0; c < F4; c += 4) STORE(dai + c, MUL(LOAD(dhi + c), dact4(kind, LOAD(ai + c))));
      for (int c = F4; c < F; c++) dai[c] = dhi[c] * LANE0(dact4(kind, SPLAT(ai[c])));
    }
  }
}

// y = h + o ⊙ m (m null: no mask), n floats
EXPORT(add_masked) void add_masked(const f32 *h, const f32 *o, const f32 *m, f32 *y, int n) {
  int n4 = n & ~3;
  for (int i = 0; i < n4; i += 4) STORE(y + i, ADD(LOAD(h + i), m ? MUL(LOAD(o + i), LOAD(m + i)) : LOAD(o + i)));
  for (int i = n4; i < n; i++) y[i] = h[i] + (m ? o[i] * m[i] : o[i]);
}

// y = a ⊙ b, n floats
EXPORT(mul) void mul(const f32 *a, const f32 *b, f32 *y, int n) {
  int n4 = n & ~3;
  for (int i = 0; i < n4; i += 4) STORE(y + i, MUL(LOAD(a + i), LOAD(b + i)));
  for (int i = n4; i < n; i++) y[i] = a[i] * b[i];
}

// y = s · x, n floats
EXPORT(scale) void scale(const f32 *x, f32 s, f32 *y, int n) {
  int n4 = n & ~3;
  for (int i = 0; i < n4; i += 4) STORE(y + i, MUL(LOAD(x + i), SPLAT(s)));
  for (int i = n4; i < n; i++) y[i] = x[i] * s;
}
