import test, { type ExecutionContext } from 'ava';
import tf from '../src/core/util/tfjs.cjs';
import { layerNorm, linear, activation, dropout, type Activation } from '../src/core/model/layers.js';
import { fusedLayerNorm } from '../src/core/model/fused/layer-norm.js';
import { fusedLinear } from '../src/core/model/fused/linear.js';
import { fusedFfn } from '../src/core/model/fused/ffn.js';
import { fusedEmbed } from '../src/core/model/fused/embed.js';
import { fusedLmLoss } from '../src/core/model/fused/lm-loss.js';
import { fusedAttention } from '../src/core/model/fused/attention.js';
import { causalAttention } from '../src/core/model/attention.js';
import { expertBackward, expertForward, freeRows, hostExpertBackward, hostExpertForward } from '../src/runtime/devices/ffn.js';
import { fusedKernels } from '../src/core/model/kernels/fused-wasm.js';
import { fusedCombine } from '../src/core/model/fused/switch-combine.js';
import { fusedBalanceLoss, fusedZLoss } from '../src/core/model/fused/router-losses.js';
import { balanceLoss, combine, zLoss, type RoutingConstants } from '../src/core/router/gates.js';
import { backend, cfg, finiteDiff, maxAbsDiff, randomArray, relErr } from './helpers.js';

/**
 * Each fused WebAssembly operation (parallel.kernels fused) against the tfjs layers it replaces: the same
 * outputs, the same gradients by tfjs autodiff of the reference, and its hand-written backward against
 * central finite differences. Sizes are not multiples of the kernels' 4×8 tiles, so the tails run too.
 */
test.before(backend);

const N = 9, D = 12, F = 10;

/** A dropout mask: zeros and 1/(1 − p) = 2. */
const maskOf = (n: number, seed: number) => tf.tensor2d(Float32Array.from(randomArray(n * D, seed), (u) => (u < -0.3 ? 0 : 2)), [n, D]);

/**
 * L(xs) = Σ f(xs) ⊙ R for the fused f and the reference g: outputs within 1e-5, gradients within 1e-4
 * (scaled), and the fused gradients within 2% of finite differences at eight coordinates of each input.
 */
function checkOp(
  t: ExecutionContext, shapes: number[][], fused: (xs: tf.Tensor[]) => tf.Tensor, ref: (xs: tf.Tensor[]) => tf.Tensor, seed: number,
  h = 1e-2, noFd: number[] = [],
) {
  const init = shapes.map((s, i) => randomArray(s.reduce((a, b) => a * b, 1), seed + i, 0.8));
  const tensors = (vals: Float32Array[]) => vals.map((v, i) => tf.tensor(v, shapes[i]!));
  const outShape = tf.tidy(() => ref(tensors(init)).shape);
  const R = randomArray(outShape.reduce((a, b) => a * b, 1), seed + 99);
  const loss = (f: typeof fused) => (...xs: tf.Tensor[]) => tf.sum(f(xs).mul(tf.tensor(R, outShape))) as tf.Scalar;
  const [yf, yr] = tf.tidy(() => [fused(tensors(init)).dataSync(), ref(tensors(init)).dataSync()]);
  t.true(maxAbsDiff(yf!, yr!) < 1e-5, `outputs differ by ${maxAbsDiff(yf!, yr!)}`);
  const gf = tf.tidy(() => tf.grads(loss(fused))(tensors(init)).map((g) => g.dataSync()));
  const gr = tf.tidy(() => tf.grads(loss(ref))(tensors(init)).map((g) => g.dataSync()));
  gf.forEach((g, i) => {
    const scale = Math.max(1, ...Array.from(gr[i]!, Math.abs));
    t.true(maxAbsDiff(g, gr[i]!) < 1e-4 * scale, `input ${i}: gradients differ by ${maxAbsDiff(g, gr[i]!)}`);
    if (noFd.includes(i)) return;
    const L = (v: Float32Array) => tf.tidy(() => loss(fused)(...tensors(init.map((x, j) => (j === i ? v : x)))).dataSync()[0]!);
    const idx = Array.from({ length: 8 }, (_, j) => Math.floor(((j + 0.5) * init[i]!.length) / 8));
    const fd = finiteDiff(L, init[i]!, idx, h);
    idx.forEach((x, j) => t.true(relErr(g[x]!, fd[j]!) < 2e-2, `input ${i}[${x}]: analytic ${g[x]} vs finite difference ${fd[j]}`));
  });
}

test('fused layer norm: the tfjs layer norm\'s values and gradients; finite differences for x, g, b', (t) => {
  checkOp(t, [[N, D], [D], [D]], ([x, g, b]) => fusedLayerNorm(x as tf.Tensor2D, g!, b!), ([x, g, b]) => layerNorm(x as tf.Tensor2D, g!, b!), 1);
});

test('fused linear with bias, residual and dropout mask: y = r + (x·W + b) ⊙ m; finite differences for x, W, b, r', (t) => {
  const mask = maskOf(N, 7);
  checkOp(t, [[N, F], [F, D], [D], [N, D]],
    ([x, w, b, r]) => fusedLinear(x as tf.Tensor2D, w!, { bias: b, residual: r as tf.Tensor2D, mask }),
    ([x, w, b, r]) => r!.add(dropout(linear(x as tf.Tensor2D, w!, b), mask)), 11);
  checkOp(t, [[N, F], [F, 13]], ([x, w]) => fusedLinear(x as tf.Tensor2D, w!), ([x, w]) => tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), 15);
  mask.dispose();
});

for (const act of ['relu', 'gelu', 'swiglu'] as Activation[]) {
  test(`fused FFN (${act}) with residual and mask, and without: finite differences for x, W1, b1, W2, b2, r`, (t) => {
    const U = act === 'swiglu' ? 2 * F : F;
    const h = act === 'relu' ? 1e-3 : 1e-2; // a step of 1e-2 can cross relu's kink
    const mask = maskOf(N, 8);
    const ffn = (xs: tf.Tensor[]) => linear(activation(act, linear(xs[0] as tf.Tensor2D, xs[1]!, xs[2]!)) as tf.Tensor2D, xs[3]!, xs[4]!);
    const weights = ([, w1, b1, w2, b2]: tf.Tensor[]) => ({ w1: w1!, b1: b1!, w2: w2!, b2: b2! });
    const shapes = [[N, D], [D, U], [U], [F, D], [D]];
    checkOp(t, [...shapes, [N, D]], (xs) => fusedFfn(xs[0] as tf.Tensor2D, weights(xs), act, xs[5] as tf.Tensor2D, mask),
      (xs) => xs[5]!.add(dropout(ffn(xs), mask)), 21, h);
    checkOp(t, shapes, (xs) => fusedFfn(xs[0] as tf.Tensor2D, weights(xs), act), ffn, 31, h);
    mask.dispose();
  });
}

test('fused embedding: wte rows plus positions, masked; finite differences for wte and wpe', (t) => {
  const V = 7, B = 2, T = 4, P = 6;
  const tokens = tf.tensor1d([0, 3, 3, 6, 1, 0, 5, 3], 'int32');
  const mask = tf.tensor2d(Float32Array.from(randomArray(B * T * D, 3), (u) => (u < -0.5 ? 0 : 2)), [B * T, D]);
  checkOp(t, [[V, D], [P, D]], ([wte, wpe]) => fusedEmbed(tokens, wte!, wpe!, B, mask),
    ([wte, wpe]) => tf.matMul(tf.oneHot(tokens, V).toFloat(), wte as tf.Tensor2D).add(tf.tile(tf.slice(wpe!, [0, 0], [T, D]), [B, 1])).mul(mask), 41);
  tf.dispose([tokens, mask]);
});

test('fused LM head and cross-entropy: the tfjs log-softmax loss and its gradients; finite differences for x and W', (t) => {
  const V = 13;
  const targets = tf.tensor1d(Array.from({ length: N }, (_, i) => (i * 5) % V), 'int32');
  checkOp(t, [[N, D], [D, V]], ([x, w]) => fusedLmLoss(x as tf.Tensor2D, w!, targets).mul(2.5), ([x, w]) => {
    const logp = tf.logSoftmax(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D));
    return tf.neg(tf.sum(logp.mul(tf.oneHot(targets, V).toFloat()))).div(N).mul(2.5);
  }, 51);
  targets.dispose();
});

test('fused attention in 4×8 tiles: attention.ts\'s values and gradients (its JavaScript reference); finite differences for qkv', (t) => {
  const shape = { batch: 2, seqLen: 16, heads: 2 }; // head size 8
  checkOp(t, [[32, 48]], ([x]) => fusedAttention(x as tf.Tensor2D, shape), ([x]) => causalAttention(x as tf.Tensor2D, shape, 'js'), 71);
});

/**
 * gemm.c's products element by element in float32, in the kernels' order: per block of 256 reduction steps, the sum
 * over r in increasing order, then the bias (first block), then what C held; the 8-column panels by multiply-add
 * (fused or not, one way for all of them: relaxed SIMD may do either), the columns past them by multiply then add.
 */
function gemmRef(
  a: (i: number, r: number) => number, B: Float32Array, C0: Float32Array, M: number, R: number, N: number,
  bias: Float32Array | null, acc: boolean, fused: boolean,
): Float32Array {
  const f = Math.fround, C = Float32Array.from(C0);
  for (let r0 = 0; r0 < R; r0 += 256)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        const fma = fused && j < (N & ~7);
        for (let r = r0; r < Math.min(R, r0 + 256); r++) s = f(s + (fma ? a(i, r) * B[r * N + j]! : f(a(i, r) * B[r * N + j]!)));
        if (r0 === 0 && bias) s = f(s + bias[j]!);
        C[i * N + j] = acc || r0 > 0 ? f(s + C[i * N + j]!) : s;
      }
  return C;
}

test('gemm, gemm_nt and col_sum: bit for bit the float32 sums in the kernels\' order (tails, two reduction blocks)', (t) => {
  const k = fusedKernels()!.reset();
  const [M, R, N] = [37, 300, 29];
  const [A, B, C0, bias] = [randomArray(M * R, 81), randomArray(R * N, 82), randomArray(M * N, 83), randomArray(N, 84)];
  const same = (got: Float32Array, want: Float32Array) => got.every((v, i) => Object.is(v, want[i]));
  const matches = (got: Float32Array, ref: (fused: boolean) => Float32Array) => same(got, ref(true)) || same(got, ref(false));
  for (const [layout, acc, withBias] of [['nn', 0, 1], ['tn', 1, 0], ['nn', 1, 1], ['tn', 0, 0]] as const) {
    const [sa, sr] = layout === 'nn' ? [R, 1] : [1, M]; // tn: A stored [R, M], read down its columns
    const [pa, pb, pc, pbias] = [k.put(A), k.put(B), k.put(C0), k.put(bias)];
    k.k.gemm(pa, sa, sr, pb, pc, M, R, N, withBias ? pbias : 0, acc, k.alloc(256 * N));
    const got = k.view(pc, M * N).slice();
    t.true(matches(got, (fused) => gemmRef((i, r) => A[i * sa + r * sr]!, B, C0, M, R, N, withBias ? bias : null, !!acc, fused)),
      `gemm ${layout} acc ${acc} bias ${withBias}`);
  }
  // C[M, N] = G[M, R]·W[N, R]ᵀ
  const [pg, pw, pc] = [k.put(A), k.put(randomArray(N * R, 85)), k.put(C0)];
  const W = k.view(pw, N * R).slice(), Wt = Float32Array.from({ length: R * N }, (_, i) => W[(i % N) * R + Math.floor(i / N)]!);
  k.k.gemm_nt(pg, pw, pc, M, R, N, k.alloc(2 * N * R), 1);
  t.true(matches(k.view(pc, M * N).slice(), (fused) => gemmRef((i, r) => A[i * R + r]!, Wt, C0, M, R, N, null, true, fused)), 'gemm_nt');
  // out[j] = Σ_i G[i, j] in row order, after what out held
  const [G, out0] = [randomArray(150 * 45, 86), randomArray(45, 87)];
  const [pG, pout] = [k.put(G), k.put(out0)];
  k.k.col_sum(pG, pout, 150, 45, 1);
  const want = Float32Array.from(out0, (v, j) => {
    for (let i = 0; i < 150; i++) v = Math.fround(v + G[i * 45 + j]!);
    return v;
  });
  t.true(same(k.view(pout, 45).slice(), want), 'col_sum');
  k.reset();
});

for (const act of ['relu', 'gelu', 'swiglu'] as Activation[]) {
  test(`an expert on the fused kernels (${act}): expertForward's output and expertBackward's gradients`, (t) => {
    const n = 9, d = D, U = act === 'swiglu' ? 2 * F : F;
    const w = { w1: randomArray(d * U, 61, 0.5), b1: randomArray(U, 62, 0.2), w2: randomArray(F * d, 63, 0.5), b2: randomArray(d, 64, 0.2) };
    const x = randomArray(n * d, 65), g = randomArray(n * d, 66);
    const f = hostExpertForward(x, n, w, act);
    const [o, a] = [f.o.slice(), fusedKernels()!.view(f.a.p, n * U).slice()];
    const r = hostExpertBackward(f.x, f.a, g, w, act);
    const got = { dx: r.dx.slice(), w1: r.w1.slice(), b1: r.b1.slice(), w2: r.w2.slice(), b2: r.b2.slice() };
    freeRows(f.x, f.a);
    tf.tidy(() => {
      const wt = { w1: tf.tensor2d(w.w1, [d, U]), b1: tf.tensor1d(w.b1), w2: tf.tensor2d(w.w2, [F, d]), b2: tf.tensor1d(w.b2) };
      const xt = tf.tensor2d(x, [n, d]);
      const ref = expertForward(xt, wt, act);
      t.true(maxAbsDiff(o, ref.o.dataSync()) < 1e-5, 'output');
      t.true(maxAbsDiff(a, ref.a.dataSync()) < 1e-5, 'pre-activation');
      const rb = expertBackward(xt, ref.a, tf.tensor2d(g, [n, d]), wt, act);
      for (const k of ['dx', 'w1', 'b1', 'w2', 'b2'] as const) {
        const diff = maxAbsDiff(got[k], rb[k].dataSync());
        t.true(diff < 1e-4, `${k}: ${diff}`);
      }
    });
  });
}

/** Routing constants for n tokens of E experts: choice c of token t goes to (t + 3c) mod E; choice 1 of every third token dropped. */
function routing(n: number, E: number, K: number, G: number, B: number): RoutingConstants {
  const chosen = (c: number) => Float32Array.from({ length: n * E }, (_, i) => (i % E === (Math.floor(i / E) + 3 * c) % E ? 1 : 0));
  const onehot = Array.from({ length: K }, (_, c) => tf.tensor2d(chosen(c), [n, E]));
  const keep = Array.from({ length: K }, (_, c) => tf.tensor2d(Float32Array.from({ length: n }, (_, t) => (c === 1 && t % 3 === 0 ? 0 : 1)), [n, 1]));
  const fraction = tf.tensor2d(randomArray(G * E, 81).map(Math.abs), [G, E]);
  const seqFraction = tf.tensor2d(randomArray(B * E, 82).map(Math.abs), [B, E]);
  return { onehot, keep, fraction, seqFraction, groups: G };
}

const ROUTERS: [string, string[]][] = [
  ['softmax top-1', []],
  ['sigmoid top-2, normalised, × 2.5, sequence-wise loss', ['moe.score=sigmoid', 'moe.top_k=2', 'moe.topk_scaling=2.5', 'moe.balance=seq_aux_loss']],
  ['softmax top-2, not normalised, gates not scaled by the score', ['moe.top_k=2', 'moe.norm_topk=false', 'moe.scale_by_prob=false']],
  ['hash', ['moe.router=hash', 'moe.balance=none']],
];

for (const [name, sets] of ROUTERS) {
  test(`fused Switch combine and router losses (${name}): gates.ts's values and gradients; finite differences`, (t) => {
    const moe = cfg('moe.n_experts=5', 'parallel.devices=1', 'moe.z_loss_coef=0.3', 'moe.balance_loss_coef=0.2', ...sets).moe;
    const n = 12, E = 5, K = moe.top_k;
    const rc = routing(n, E, K, 2, 3);
    const mask = maskOf(n, 9);
    const outs = Array.from({ length: K }, () => [n, D]);
    const fd = moe.scale_by_prob ? [] : [1]; // g / stop_gradient(g): its gradient is not the derivative of its value
    checkOp(t, [[n, D], [n, E], ...outs, [n, D]],
      (xs) => fusedCombine(xs[0] as tf.Tensor2D, xs[1] as tf.Tensor2D, xs.slice(2, 2 + K) as tf.Tensor2D[], rc, moe, xs[2 + K] as tf.Tensor2D, mask),
      (xs) => xs[0]!.add(dropout(combine(xs[1] as tf.Tensor2D, xs.slice(2, 2 + K) as tf.Tensor2D[], rc, moe).add(xs[2 + K]!), mask))
        .add(tf.sum(xs[1]!).mul(0)), 91, 1e-2, fd); // a hash reads no logits: zero gradient, which tf.grads needs to see
    if (moe.balance !== 'none') checkOp(t, [[n, E]], ([z]) => fusedBalanceLoss(z as tf.Tensor2D, rc, moe), ([z]) => balanceLoss(z as tf.Tensor2D, rc, moe), 92);
    if (moe.router !== 'hash') checkOp(t, [[n, E]], ([z]) => fusedZLoss(z as tf.Tensor2D, moe), ([z]) => zLoss(z as tf.Tensor2D, moe), 93);
    tf.dispose([...rc.onehot, ...rc.keep, rc.fraction, rc.seqFraction!, mask]);
  });
}
