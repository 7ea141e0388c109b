import * as tf from '@tensorflow/tfjs';

/**
 * Fused causal multi-head self-attention on the thread's CPU, with its gradient beside it.
 *
 * tfjs-wasm runs batched matMul with a batch dimension on both sides (Q·Kᵀ, A·V) at ~2 GFLOP/s,
 * and the [B·H, T, T] score tensors, mask and softmax cost as much again. This kernel reads Q, K, V
 * straight from the projection layout [B·T, H·hd] (no transposes), skips the masked half of the
 * scores, and keeps only the per-row log-sum-exp for the backward pass (bench/kernels.ts measures it
 * against the tfjs composition).
 *
 *   S = Q·Kᵀ / √hd (j ≤ i),  P = softmax(S),  O = P·V
 *   dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dO ⊙ O)),  dQ = dS·K / √hd,  dK = dSᵀ·Q / √hd,  dV = Pᵀ·dO
 */
export interface AttentionShape {
  batch: number;
  seqLen: number;
  heads: number;
}

interface Forward {
  o: Float32Array;
  /** [B, H, T] log-sum-exp of each row's scores */
  lse: Float32Array;
}

/** Copies head h of sequence b from [B·T, d_model] into a contiguous [T, hd] block, or back (adding). */
function gather(src: Float32Array, dst: Float32Array, base: number, T: number, hd: number, dModel: number): void {
  for (let t = 0; t < T; t++) {
    const from = base + t * dModel;
    const to = t * hd;
    for (let c = 0; c < hd; c++) dst[to + c] = src[from + c]!;
  }
}
function scatter(src: Float32Array, dst: Float32Array, base: number, T: number, hd: number, dModel: number): void {
  for (let t = 0; t < T; t++) {
    const to = base + t * dModel;
    const from = t * hd;
    for (let c = 0; c < hd; c++) dst[to + c] = src[from + c]!;
  }
}

/** s[j] = scale · ⟨a[ai..ai+hd), b[j·hd..)⟩ for j in [0, n): four rows of b per pass share the loads of a. */
function dots(a: Float32Array, ai: number, b: Float32Array, n: number, hd: number, scale: number, s: Float32Array): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const b0 = j * hd, b1 = b0 + hd, b2 = b1 + hd, b3 = b2 + hd;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let c = 0; c < hd; c++) {
      const x = a[ai + c]!;
      s0 += x * b[b0 + c]!;
      s1 += x * b[b1 + c]!;
      s2 += x * b[b2 + c]!;
      s3 += x * b[b3 + c]!;
    }
    s[j] = s0 * scale; s[j + 1] = s1 * scale; s[j + 2] = s2 * scale; s[j + 3] = s3 * scale;
  }
  for (; j < n; j++) {
    const bj = j * hd;
    let acc = 0;
    for (let c = 0; c < hd; c++) acc += a[ai + c]! * b[bj + c]!;
    s[j] = acc * scale;
  }
}

/** out[oi..oi+hd) += Σ_{j<n} w[wi+j] · b[(bj+j)·hd..), four rows of b per pass. */
function combineRows(w: Float32Array, wi: number, b: Float32Array, bj: number, n: number, hd: number, out: Float32Array, oi: number): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const b0 = (bj + j) * hd, b1 = b0 + hd, b2 = b1 + hd, b3 = b2 + hd;
    const w0 = w[wi + j]!, w1 = w[wi + j + 1]!, w2 = w[wi + j + 2]!, w3 = w[wi + j + 3]!;
    for (let c = 0; c < hd; c++) out[oi + c]! += w0 * b[b0 + c]! + w1 * b[b1 + c]! + w2 * b[b2 + c]! + w3 * b[b3 + c]!;
  }
  for (; j < n; j++) {
    const b0 = (bj + j) * hd;
    const wj = w[wi + j]!;
    for (let c = 0; c < hd; c++) out[oi + c]! += wj * b[b0 + c]!;
  }
}

export function forward(q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape, dModel: number): Forward {
  const { batch: B, seqLen: T, heads: H } = s;
  const hd = dModel / H;
  const scale = 1 / Math.sqrt(hd);
  const o = new Float32Array(q.length);
  const lse = new Float32Array(B * H * T);
  const p = new Float32Array(T);
  const [qh, kh, vh, oh] = [0, 0, 0, 0].map(() => new Float32Array(T * hd)) as Float32Array[];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const base = b * T * dModel + h * hd;
      gather(q, qh!, base, T, hd, dModel);
      gather(k, kh!, base, T, hd, dModel);
      gather(v, vh!, base, T, hd, dModel);
      oh!.fill(0);
      for (let i = 0; i < T; i++) {
        const n = i + 1; // causal: keys 0..i
        dots(qh!, i * hd, kh!, n, hd, scale, p);
        let m = -Infinity;
        for (let j = 0; j < n; j++) if (p[j]! > m) m = p[j]!;
        let l = 0;
        for (let j = 0; j < n; j++) {
          const e = Math.exp(p[j]! - m);
          p[j] = e;
          l += e;
        }
        const inv = 1 / l;
        for (let j = 0; j < n; j++) p[j]! *= inv;
        combineRows(p, 0, vh!, 0, n, hd, oh!, i * hd);
        lse[(b * H + h) * T + i] = m + Math.log(l);
      }
      scatter(oh!, o, base, T, hd, dModel);
    }
  }
  return { o, lse };
}

export function backward(
  q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, lse: Float32Array, dO: Float32Array,
  s: AttentionShape, dModel: number,
): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const { batch: B, seqLen: T, heads: H } = s;
  const hd = dModel / H;
  const scale = 1 / Math.sqrt(hd);
  const dq = new Float32Array(q.length);
  const dk = new Float32Array(k.length);
  const dv = new Float32Array(v.length);
  const P = new Float32Array(T);
  const dS = new Float32Array(T);
  // column-major copies of P and dS for one (b, h): row j holds column j, so dK and dV are row combinations too
  const Pt = new Float32Array(T * T);
  const dSt = new Float32Array(T * T);
  const blocks = Array.from({ length: 8 }, () => new Float32Array(T * hd));
  const [qh, kh, vh, oh, gh, dqh, dkh, dvh] = blocks as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const base = b * T * dModel + h * hd;
      gather(q, qh, base, T, hd, dModel);
      gather(k, kh, base, T, hd, dModel);
      gather(v, vh, base, T, hd, dModel);
      gather(o, oh, base, T, hd, dModel);
      gather(dO, gh, base, T, hd, dModel);
      dqh.fill(0);
      dkh.fill(0);
      dvh.fill(0);
      for (let i = 0; i < T; i++) {
        const n = i + 1;
        const ii = i * hd;
        const rowLse = lse[(b * H + h) * T + i]!;
        let Di = 0;
        for (let c = 0; c < hd; c++) Di += gh[ii + c]! * oh[ii + c]!;
        dots(qh, ii, kh, n, hd, scale, P); // scores
        dots(gh, ii, vh, n, hd, 1, dS); // dP_ij = dO_i · v_j
        for (let j = 0; j < n; j++) {
          const pj = Math.exp(P[j]! - rowLse);
          const ds = pj * (dS[j]! - Di) * scale;
          dS[j] = ds;
          Pt[j * T + i] = pj;
          dSt[j * T + i] = ds;
        }
        combineRows(dS, 0, kh, 0, n, hd, dqh, ii); // dQ_i = Σ_{j≤i} dS_ij k_j
      }
      for (let j = 0; j < T; j++) {
        combineRows(dSt, j * T + j, qh, j, T - j, hd, dkh, j * hd); // dK_j = Σ_{i≥j} dS_ij q_i
        combineRows(Pt, j * T + j, gh, j, T - j, hd, dvh, j * hd); // dV_j = Σ_{i≥j} P_ij dO_i
      }
      scatter(dqh, dq, base, T, hd, dModel);
      scatter(dkh, dk, base, T, hd, dModel);
      scatter(dvh, dv, base, T, hd, dModel);
    }
  }
  return { dq, dk, dv };
}

/** Forward results kept per block, so that a recomputed forward (segment backward) skips the kernel. */
export interface AttentionMemo {
  o?: Float32Array;
  lse?: Float32Array;
}

/** O = causal attention(Q, K, V); q, k, v and the result are [batch·seq_len, d_model]. */
export function causalAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, shape: AttentionShape, memo: AttentionMemo = {}): tf.Tensor2D {
  const dModel = q.shape[1];
  const f = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qt, kt, vt] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    if (!memo.o || !memo.lse) {
      const [qd, kd, vd] = [qt!, kt!, vt!].map((t) => t.dataSync() as Float32Array) as [Float32Array, Float32Array, Float32Array];
      Object.assign(memo, forward(qd, kd, vd, shape, dModel));
    }
    const out = tf.tensor2d(memo.o!, q.shape);
    save([qt!, kt!, vt!, out]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sq, sk, sv, so] = saved.map((t) => t.dataSync() as Float32Array) as Float32Array[];
        const g = backward(sq!, sk!, sv!, so!, memo.lse!, (dy as tf.Tensor).dataSync() as Float32Array, shape, dModel);
        return [tf.tensor2d(g.dq, q.shape), tf.tensor2d(g.dk, q.shape), tf.tensor2d(g.dv, q.shape)];
      },
    };
  };
  const op = tf.customGrad(f as Parameters<typeof tf.customGrad>[0]);
  return op(q, k, v) as tf.Tensor2D;
}
