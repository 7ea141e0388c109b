// Layer norm over the last axis, forward and backward (WebAssembly SIMD; part of fused.wasm).
//   μ = (1/C) Σ_c x_c,  σ² = (1/C) Σ_c (x_c − μ)²,  r = 1/√(σ² + ε),  x̂ = (x − μ)·r,  y = x̂ ⊙ g + b
//   dx̂ = dy ⊙ g,  dx = r · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂)),  dg += Σ_rows dy ⊙ x̂,  db += Σ_rows dy
#include "simd-math.h"

// x, y [N, C]; mean, rstd [N] kept for the backward pass
EXPORT(layernorm_fwd) void layernorm_fwd(const f32 *x, const f32 *g, const f32 *b, f32 *y, f32 *mean, f32 *rstd, int N, int C, f32 eps) {
  int C4 = C & ~3;
  for (int i = 0; i < N; i++) {
    const f32 *xi = x + (long)i * C;
    f32 *yi = y + (long)i * C;
    v128_t s4 = SPLAT(0);
    for (int c = 0; c < C4; c += 4) s4 = ADD(s4, LOAD(xi + c));
    f32 s = hsum4(s4);
    for (int c = C4; c < C; c++) s += xi[c];
    f32 mu = s / C;
    v128_t m4 = SPLAT(mu), q4 = SPLAT(0);
    for (int c = 0; c < C4; c += 4) {
      v128_t d = SUB(LOAD(xi + c), m4);
      q4 = ADD(q4, MUL(d, d));
    }
    f32 q = hsum4(q4);
    for (int c = C4; c < C; c++) q += (xi[c] - mu) * (xi[c] - mu);
    f32 r = 1.0f / __builtin_sqrtf(q / C + eps);
    mean[i] = mu;
    rstd[i] = r;
    v128_t r4 = SPLAT(r);
    for (int c = 0; c < C4; c += 4) STORE(yi + c, ADD(MUL(MUL(SUB(LOAD(xi + c), m4), r4), LOAD(g + c)), LOAD(b + c)));
    for (int c = C4; c < C; c++) yi[c] = (xi[c] - mu) * r * g[c] + b[c];
  }
}

// dx [N, C] written; dg, db [C] accumulated
EXPORT(layernorm_bwd) void layernorm_bwd(const f32 *x, const f32 *g, const f32 *mean, const f32 *rstd, const f32 *dy, f32 *dx, f32 *dg, f32 *db, int N, int C) {
  int C4 = C & ~3;
  for (int i = 0; i < N; i++) {
    const f32 *xi = x + (long)i * C, *dyi = dy + (long)i * C;
    f32 *dxi = dx + (long)i * C;
    v128_t m4 = SPLAT(mean[i]), r4 = SPLAT(rstd[i]), s1 = SPLAT(0), s2 = SPLAT(0);
    for (int c = 0; c < C4; c += 4) {
      v128_t xh = MUL(SUB(LOAD(xi + c), m4), r4), d = LOAD(dyi + c), dxh = MUL(d, LOAD(g + c));
      s1 = ADD(s1, dxh);
      s2 = ADD(s2, MUL(dxh, xh));
      STORE(dg + c, ADD(LOAD(dg + c), MUL(d, xh)));
      STORE(db + c, ADD(LOAD(db + c), d));
    }
    f32 a = hsum4(s1), b2 = hsum4(s2);
    for (int c = C4; c < C; c++) {
      f32 xh = (xi[c] - mean[i]) * rstd[i], dxh = dyi[c] * g[c];
      a += dxh;
      b2 += dxh * xh;
      dg[c] += dyi[c] * xh;
      db[c] += dyi[c];
    }
    a /= C;
    b2 /= C;
    v128_t a4 = SPLAT(a), b4 = SPLAT(b2);
    for (int c = 0; c < C4; c += 4) {
      v128_t xh = MUL(SUB(LOAD(xi + c), m4), r4), dxh = MUL(LOAD(dyi + c), LOAD(g + c));
      STORE(dxi + c, MUL(r4, SUB(SUB(dxh, a4), MUL(xh, b4))));
    }
    for (int c = C4; c < C; c++) {
      f32 xh = (xi[c] - mean[i]) * rstd[i];
      dxi[c] = rstd[i] * (dyi[c] * g[c] - a - xh * b2);
    }
  }
}
