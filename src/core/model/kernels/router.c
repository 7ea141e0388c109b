// The router's scores and the z-loss's gradient on the logits (WebAssembly SIMD; part of fused.wasm).
//   softmax  s_{t,i} = e^{z_{t,i} − lse_t},  lse_t = log Σ_j e^{z_{t,j}}        sigmoid  s_{t,i} = σ(z_{t,i})
//   z-loss   Z = c · (1/N) Σ_t lse_t²,  ∂z_{t,i} = k · lse_t · e^{z_{t,i} − lse_t}  (k = ∂Z · 2c/N)
// z, s [N, E]; lse [N] (written for both score functions, or null).
#include "simd-math.h"

static f32 row_lse(const f32 *z, int E) {
  f32 m = z[0];
  for (int i = 1; i < E; i++) if (z[i] > m) m = z[i];
  int E4 = E & ~3;
  v128_t s4 = SPLAT(0), m4 = SPLAT(m);
  for (int i = 0; i < E4; i += 4) s4 = ADD(s4, exp4(SUB(LOAD(z + i), m4)));
  f32 s = hsum4(s4);
  for (int i = E4; i < E; i++) s += SCALAR(exp4, z[i] - m);
  return m + log_f(s);
}

EXPORT(router_scores) void router_scores(const f32 *z, f32 *s, f32 *lse, int N, int E, int sigmoid) {
  int E4 = E & ~3;
  for (int t = 0; t < N; t++) {
    const f32 *zt = z + (long)t * E;
    f32 *st = s + (long)t * E;
    f32 l = row_lse(zt, E);
    if (lse) lse[t] = l;
    v128_t l4 = SPLAT(l);
    for (int i = 0; i < E4; i += 4) STORE(st + i, sigmoid ? sigmoid4(LOAD(zt + i)) : exp4(SUB(LOAD(zt + i), l4)));
    for (int i = E4; i < E; i++) st[i] = sigmoid ? SCALAR(sigmoid4, zt[i]) : SCALAR(exp4, zt[i] - l);
  }
}

EXPORT(zloss_bwd) void zloss_bwd(const f32 *z, const f32 *lse, f32 k, f32 *dz, int N, int E) {
  int E4 = E & ~3;
  for (int t = 0; t < N; t++) {
    const f32 *zt = z + (long)t * E;
    f32 *dt = dz + (long)t * E, l = lse[t];
    v128_t l4 = SPLAT(l), c4 = SPLAT(k * l);
    for (int i = 0; i < E4; i += 4) STORE(dt + i, MUL(c4, exp4(SUB(LOAD(zt + i), l4))));
    for (int i = E4; i < E; i++) dt[i] = k * l * SCALAR(exp4, zt[i] - l);
  }
}
