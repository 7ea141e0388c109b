// The LM head's softmax cross-entropy and the embedding lookup (WebAssembly SIMD; part of fused.wasm).
//   ce = (1/N) Σ_i (lse_i − z_{i,t_i}),  lse_i = log Σ_v e^{z_{i,v}}
//   ∂ce/∂z_{i,v} = (softmax(z_i)_v − 1[v = t_i]) / N
//   h_{b,t} = wte[x_{b,t}] + wpe[t];  ∂/∂wte[v] = Σ_{x_{b,t} = v} dh_{b,t},  ∂/∂wpe[t] = Σ_b dh_{b,t}
#include "simd-math.h"

// z [N, V] logits, targets [N]; G [N, V] = ∂ce/∂z written (G may be z itself); returns ce
EXPORT(softmax_xent) f32 softmax_xent(const f32 *z, const int *targets, f32 *G, int N, int V) {
  double total = 0;
  int V4 = V & ~3;
  f32 invN = 1.0f / N;
  for (int i = 0; i < N; i++) {
    const f32 *zi = z + (long)i * V;
    f32 *gi = G + (long)i * V;
    f32 zt = zi[targets[i]], m = zi[0];
    for (int v = 1; v < V; v++) if (zi[v] > m) m = zi[v];
    v128_t m4 = SPLAT(m), s4 = SPLAT(0);
    for (int v = 0; v < V4; v += 4) {
      v128_t e = exp4(SUB(LOAD(zi + v), m4));
      STORE(gi + v, e);
      s4 = ADD(s4, e);
    }
    f32 s = hsum4(s4);
    for (int v = V4; v < V; v++) s += (gi[v] = SCALAR(exp4, zi[v] - m));
    f32 lse = m + log_f(s);
    total += lse - zt;
    v128_t k4 = SPLAT(invN / s);
    for (int v = 0; v < V4; v += 4) STORE(gi + v, MUL(LOAD(gi + v), k4));
    for (int v = V4; v < V; v++) gi[v] *= invN / s;
    gi[targets[i]] -= invN;
  }
  return (f32)(total / N);
}

// h [B·T, d] = wte[tokens] + wpe[0..T)
EXPORT(embed_fwd) void embed_fwd(const int *tokens, const f32 *wte, const f32 *wpe, f32 *h, int B, int T, int d) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const f32 *w = wte + (long)tokens[b * T + t] * d, *p = wpe + (long)t * d;
      f32 *o = h + ((long)b * T + t) * d;
      for (int c = 0; c < d; c++) o[c] = w[c] + p[c];
    }
}

// dwte [V, d] and dwpe [T, d] accumulated from dh [B·T, d]
EXPORT(embed_bwd) void embed_bwd(const int *tokens, const f32 *dh, f32 *dwte, f32 *dwpe, int B, int T, int d) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const f32 *g = dh + ((long)b * T + t) * d;
      f32 *w = dwte + (long)tokens[b * T + t] * d, *p = dwpe + (long)t * d;
      for (int c = 0; c < d; c++) {
        w[c] += g[c];
        p[c] += g[c];
      }
    }
}
