import type { ParamSet } from '../model/params.js';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWState {
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/**
 * AdamW (Loshchilov & Hutter) over named Float32Array parameters, in place. Used alike by the
 * coordinator and by every device for the experts it owns. Decoupled weight decay applies to
 * matrices (rank ≥ 2) only, not to biases or layer-norm gains.
 *   g ← clip·g;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   θ ← θ − lr·( m̂ / (√v̂ + ε) + λ·θ ),  m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)
 */
export class AdamW {
  readonly state: AdamWState = { m: new Map(), v: new Map() };
  constructor(private readonly opts: AdamWOptions) {}

  step(params: ParamSet, grads: Map<string, Float32Array>, lr: number, clipScale: number, t: number): void {
    const { beta1: b1, beta2: b2, eps, weightDecay } = this.opts;
    // the bias corrections as multipliers: a division per element costs several multiplications' time
    const [ic1, ic2] = [1 / (1 - b1 ** t), 1 / (1 - b2 ** t)];
    const [nb1, nb2] = [1 - b1, 1 - b2];
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      let m = this.state.m.get(name);
      let v = this.state.v.get(name);
      if (!m || !v) {
        m = new Float32Array(p.data.length);
        v = new Float32Array(p.data.length);
        this.state.m.set(name, m);
        this.state.v.set(name, v);
      }
      const decay = p.shape.length >= 2 ? weightDecay : 0;
      update(p.data, g, m, v, { b1, b2, nb1, nb2, ic1, ic2, eps, lr, decay, clipScale });
    }
  }
}

interface StepConstants {
  b1: number;
  b2: number;
  nb1: number;
  nb2: number;
  ic1: number;
  ic2: number;
  eps: number;
  lr: number;
  decay: number;
  clipScale: number;
}

/** One parameter's update, in place (one function for every parameter: V8 optimizes it once). */
function update(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, c: StepConstants): void {
  const { b1, b2, nb1, nb2, ic1, ic2, eps, lr, decay, clipScale } = c;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]! * clipScale;
    const mi = (m[i] = b1 * m[i]! + nb1 * gi);
    const vi = (v[i] = b2 * v[i]! + nb2 * gi * gi);
    const wi = w[i]!;
    w[i] = wi - lr * ((mi * ic1) / (Math.sqrt(vi * ic2) + eps) + decay * wi);
  }
}

export const sumSquares = (grads: Iterable<Float32Array>) => {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return s;
};
