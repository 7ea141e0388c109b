import tf from '../util/tfjs.cjs';
import { readView, tensorFrom } from '../backend/view.js';
import { wasmAttentionAvailable, wasmAttentionBackward, wasmAttentionForward } from './kernels/attention-wasm.js';

/**
 * Fused causal multi-head self-attention, with its gradient beside it.
 *
 * tfjs-wasm runs batched matMul with a batch dimension on both sides (Q·Kᵀ, A·V) at ~2 GFLOP/s,
 * and the [B·H, T, T] score tensors, mask and softmax cost as much again. This kernel reads Q, K, V
 * straight from the fused projection output qkv [B·T, 3·H·hd] (no split, no transposes), skips the
 * masked half of the scores, and keeps only the per-row log-sum-exp for the backward pass. It runs in
 * WebAssembly SIMD (kernels/attention.c) where hd % 4 = 0, else in the JavaScript below, which is also
 * the tests' reference (bench/kernels.ts measures both against the tfjs composition).
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
function dots(
  a: Float32Array, ai: number, b: Float32Array, n: number, hd: number, scale: number, s: Float32Array,
): void {
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
function combineRows(
  w: Float32Array, wi: number, b: Float32Array, bj: number, n: number, hd: number, out: Float32Array, oi: number,
): void {
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

export function forward(qkv: Float32Array, s: AttentionShape, dModel: number): Forward {
  const { batch: B, seqLen: T, heads: H } = s;
  const hd = dModel / H;
  const S3 = 3 * dModel;
  const scale = 1 / Math.sqrt(hd);
  const o = new Float32Array(B * T * dModel);
  const lse = new Float32Array(B * H * T);
  const p = new Float32Array(T);
  const [qh, kh, vh, oh] = [0, 0, 0, 0].map(() => new Float32Array(T * hd)) as Float32Array[];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const base = b * T * S3 + h * hd;
      gather(qkv, qh!, base, T, hd, S3);
      gather(qkv, kh!, base + dModel, T, hd, S3);
      gather(qkv, vh!, base + 2 * dModel, T, hd, S3);
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
      scatter(oh!, o, b * T * dModel + h * hd, T, hd, dModel);
    }
  }
  return { o, lse };
}

export function backward(
  qkv: Float32Array, o: Float32Array, lse: Float32Array, dO: Float32Array, s: AttentionShape, dModel: number,
): Float32Array {
  const { batch: B, seqLen: T, heads: H } = s;
  const hd = dModel / H;
  const scale = 1 / Math.sqrt(hd);
  const S3 = 3 * dModel;
  const dqkv = new Float32Array(qkv.length);
  const P = new Float32Array(T);
  const dS = new Float32Array(T);
  // column-major copies of P and dS for one (b, h): row j holds column j, so dK and dV are row combinations too
  const Pt = new Float32Array(T * T);
  const dSt = new Float32Array(T * T);
  const blocks = Array.from({ length: 8 }, () => new Float32Array(T * hd));
  const [qh, kh, vh, oh, gh, dqh, dkh, dvh] = blocks as [
    Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array,
  ];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const base = b * T * S3 + h * hd;
      const row = b * T * dModel + h * hd;
      gather(qkv, qh, base, T, hd, S3);
      gather(qkv, kh, base + dModel, T, hd, S3);
      gather(qkv, vh, base + 2 * dModel, T, hd, S3);
      gather(o, oh, row, T, hd, dModel);
      gather(dO, gh, row, T, hd, dModel);
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
      scatter(dqh, dqkv, base, T, hd, S3);
      scatter(dkh, dqkv, base + dModel, T, hd, S3);
      scatter(dvh, dqkv, base + 2 * dModel, T, hd, S3);
    }
  }
  return dqkv;
}

/** Which implementation runs: WebAssembly SIMD where possible, or the JavaScript reference. */
export type AttentionImpl = 'auto' | 'wasm' | 'js';

/** O = causal attention of the fused projection qkv [B·T, 3·d_model] → [B·T, d_model]. */
export function causalAttention(qkv: tf.Tensor2D, shape: AttentionShape, impl: AttentionImpl = 'auto'): tf.Tensor2D {
  const dModel = qkv.shape[1] / 3;
  const N = qkv.shape[0];
  const dims = { ...shape, headDim: dModel / shape.heads };
  const useWasm = impl !== 'js' && wasmAttentionAvailable(dims.headDim);
  if (impl === 'wasm' && !useWasm) throw new Error(`the WebAssembly attention kernel needs head size % 4 = 0 and ` +
    `WebAssembly SIMD (head size ${dims.headDim})`);
  const f = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    // tensors are read through views of the backend's heap, used at once (no per-call allocations)
    const fwd = useWasm ? wasmAttentionForward(readView(x), dims) : forward(readView(x), shape, dModel);
    const out = tensorFrom(fwd.o, [N, dModel]);
    const lse = tensorFrom(fwd.lse, [fwd.lse.length]);
    save([x, out, lse]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, so, sl] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const g = dy as tf.Tensor;
        const dqkv = useWasm
          ? wasmAttentionBackward(readView(sx), readView(so), readView(sl), readView(g), dims)
          : backward(readView(sx), readView(so), readView(sl), readView(g), shape, dModel);
        return [tensorFrom(dqkv, [N, 3 * dModel])];
      },
    };
  };
  const op = tf.customGrad(f as Parameters<typeof tf.customGrad>[0]);
  return op(qkv) as tf.Tensor2D;
}
