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

// four columns of a row, or fewer at its end (the rest of the lanes unused)
static inline v128_t load_n(const f32 *p, int n) {
  if (n >= 4) return LOAD(p);
  f32 t[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; i++) t[i] = p[i];
  return LOAD(t);
}
static inline void store_n(f32 *p, v128_t v, int n) {
  if (n >= 4) { STORE(p, v); return; }
  f32 t[4];
  STORE(t, v);
  for (int i = 0; i < n; i++) p[i] = t[i];
}

// h [N, F] from a [N, F] (relu, gelu) or [N, 2F] (swiglu)
EXPORT(act_fwd) void act_fwd(int kind, const f32 *a, f32 *h, int N, int F) {
  int W = kind == SWIGLU ? 2 * F : F;
  for (int i = 0; i < N; i++) {
    const f32 *ai = a + (long)i * W;
    f32 *hi = h + (long)i * F;
    for (int c = 0; c < F; c += 4) {
      int n = F - c;
      v128_t v = load_n(ai + c, n);
      if (kind == SWIGLU) v = MUL(MUL(v, sigmoid4(v)), load_n(ai + F + c, n));
      else v = act4(kind, v);
      store_n(hi + c, v, n);
    }
  }
}

// da (shape of a) from dh [N, F]
EXPORT(act_bwd) void act_bwd(int kind, const f32 *a, const f32 *dh, f32 *da, int N, int F) {
  int W = kind == SWIGLU ? 2 * F : F;
  for (int i = 0; i < N; i++) {
    const f32 *ai = a + (long)i * W, *dhi = dh + (long)i * F;
    f32 *dai = da + (long)i * W;
    for (int c = 0; c < F; c += 4) {
      int n = F - c;
      v128_t v = load_n(ai + c, n), d = load_n(dhi + c, n);
      if (kind == SWIGLU) {
        v128_t u = load_n(ai + F + c, n), s = sigmoid4(v);
        v128_t dsilu = MUL(s, ADD(MUL(v, SUB(SPLAT(1.0f), s)), SPLAT(1.0f)));
        store_n(dai + c, MUL(MUL(d, u), dsilu), n);
        store_n(dai + F + c, MUL(d, MUL(v, s)), n);
      } else store_n(dai + c, MUL(d, dact4(kind, v)), n);
    }
  }
}

// y = h + o ⊙ m (m null: no mask), n floats
EXPORT(add_masked) void add_masked(const f32 *h, const f32 *o, const f32 *m, f32 *y, int n) {
  for (int i = 0; i < n; i += 4) {
    int k = n - i;
    v128_t v = load_n(o + i, k);
    if (m) v = MUL(v, load_n(m + i, k));
    store_n(y + i, ADD(load_n(h + i, k), v), k);
  }
}

// y = a ⊙ b, n floats
EXPORT(mul) void mul(const f32 *a, const f32 *b, f32 *y, int n) {
  for (int i = 0; i < n; i += 4) {
    int k = n - i;
    store_n(y + i, MUL(load_n(a + i, k), load_n(b + i, k)), k);
  }
}
