// The Switch layer's combine and residual, forward and backward (WebAssembly SIMD; part of fused.wasm).
//   y_t = h_t + m_t ⊙ (Σ_c coef_{t,c} · o^c_t + shared_t),  coef = keep · G (the gates, computed by the caller)
//   dM = dy ⊙ m,  ∂o^c_t = coef_{t,c} · dM_t,  ∂G_{t,c} = keep_{t,c} · ⟨dM_t, o^c_t⟩  (∂h = dy, ∂shared = dM)
// outs and dOuts hold the pointers of the K choices' [N, d] arrays; shared and m may be null.
#include "simd-math.h"

EXPORT(combine_fwd) void combine_fwd(const f32 *h, f32 *const *o, const f32 *coef, const f32 *shared, const f32 *m, f32 *y, int N, int d, int K) {
  int d4 = d & ~3;
  for (int t = 0; t < N; t++) {
    long r = (long)t * d;
    for (int j = 0; j < d4; j += 4) {
      v128_t acc = MUL(LOAD(o[0] + r + j), SPLAT(coef[t * K]));
      for (int c = 1; c < K; c++) acc = ADD(acc, MUL(LOAD(o[c] + r + j), SPLAT(coef[t * K + c])));
      if (shared) acc = ADD(acc, LOAD(shared + r + j));
      if (m) acc = MUL(acc, LOAD(m + r + j));
      STORE(y + r + j, ADD(LOAD(h + r + j), acc));
    }
    for (int j = d4; j < d; j++) {
      f32 acc = o[0][r + j] * coef[t * K];
      for (int c = 1; c < K; c++) acc += o[c][r + j] * coef[t * K + c];
      if (shared) acc += shared[r + j];
      if (m) acc *= m[r + j];
      y[r + j] = h[r + j] + acc;
    }
  }
}

EXPORT(combine_bwd) void combine_bwd(const f32 *dy, const f32 *m, f32 *const *o, const f32 *coef, const f32 *keep,
                                     f32 *dM, f32 *const *dO, f32 *dG, int N, int d, int K) {
  int d4 = d & ~3;
  for (int t = 0; t < N; t++) {
    long r = (long)t * d;
    for (int j = 0; j < d; j++) dM[r + j] = m ? dy[r + j] * m[r + j] : dy[r + j];
    for (int c = 0; c < K; c++) {
      const f32 *oc = o[c] + r;
      f32 *dc = dO[c] + r;
      f32 k = coef[t * K + c];
      v128_t dot = SPLAT(0), k4 = SPLAT(k);
      for (int j = 0; j < d4; j += 4) {
        v128_t g = LOAD(dM + r + j);
        dot = ADD(dot, MUL(g, LOAD(oc + j)));
        STORE(dc + j, MUL(k4, g));
      }
      f32 s = hsum4(dot);
      for (int j = d4; j < d; j++) {
        s += dM[r + j] * oc[j];
        dc[j] = k * dM[r + j];
      }
      dG[t * K + c] = keep[t * K + c] * s;
    }
  }
}
