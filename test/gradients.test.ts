import test from 'ava';
import tf from '../src/core/util/tfjs.cjs';
import { expertBackward, expertForward, type ExpertWeights } from '../src/runtime/devices/ffn.js';
import { causalAttention } from '../src/core/model/attention.js';
import { balanceLoss, combine, zLoss, type RoutingConstants } from '../src/core/router/gates.js';
import { backend, cfg, finiteDiff, randomArray, relErr } from './helpers.js';

/** The default Switch layer's moe settings, with overrides. */
const moe = (over: Partial<ReturnType<typeof cfg>['moe']> = {}) => ({ ...cfg().moe, ...over });

test.before(backend);

/** Checks analytic gradient entries against central differences at a spread of coordinates. */
function checkGrad(t: import('ava').ExecutionContext, what: string, f: (x: Float32Array) => number, x: Float32Array, grad: ArrayLike<number>, tol = 2e-2) {
  const idx = Array.from({ length: 8 }, (_, i) => Math.floor(((i + 0.5) * x.length) / 8));
  const fd = finiteDiff(f, x, idx);
  idx.forEach((i, j) => t.true(relErr(grad[i]!, fd[j]!) < tol, `${what}[${i}]: analytic ${grad[i]} vs finite difference ${fd[j]}`));
}

for (const act of ['relu', 'gelu', 'swiglu'] as const) {
  test(`expert backward (${act}) matches finite differences for x, W1, b1, W2, b2`, (t) => {
    const n = 6, d = 5, dff = 7;
    const up = act === 'swiglu' ? 2 * dff : dff; // swiglu: W1 = gate | up
    const init = { x: randomArray(n * d, 1), w1: randomArray(d * up, 2, 0.7), b1: randomArray(up, 3, 0.3), w2: randomArray(dff * d, 4, 0.7), b2: randomArray(d, 5, 0.3) };
    const R = randomArray(n * d, 6); // L = Σ o ⊙ R
    const shapes = { x: [n, d], w1: [d, up], b1: [up], w2: [dff, d], b2: [d] } as const;
    const loss = (v: typeof init) => tf.tidy(() => {
      const w = { w1: tf.tensor(v.w1, [d, up]), b1: tf.tensor(v.b1, [up]), w2: tf.tensor(v.w2, [dff, d]), b2: tf.tensor(v.b2, [d]) } as ExpertWeights;
      return tf.sum(expertForward(tf.tensor2d(v.x, [n, d]), w, act).o.mul(tf.tensor2d(R, [n, d]))).dataSync()[0]!;
    });
    const g = tf.tidy(() => {
      const w = { w1: tf.tensor(init.w1, [d, up]), b1: tf.tensor(init.b1, [up]), w2: tf.tensor(init.w2, [dff, d]), b2: tf.tensor(init.b2, [d]) } as ExpertWeights;
      const x = tf.tensor2d(init.x, [n, d]);
      const f = expertForward(x, w, act);
      const r = expertBackward(x, f.a, tf.tensor2d(R, [n, d]), w, act);
      return { x: r.dx.dataSync(), w1: r.w1.dataSync(), b1: r.b1.dataSync(), w2: r.w2.dataSync(), b2: r.b2.dataSync() };
    });
    for (const k of Object.keys(shapes) as (keyof typeof init)[]) {
      checkGrad(t, k, (v) => loss({ ...init, [k]: v }), init[k], g[k]);
    }
  });
}

function constants(N: number, E: number, G: number, choice: number[], keep: number[], fraction: number[]): RoutingConstants {
  const oh = new Float32Array(N * E);
  choice.forEach((e, tIdx) => (oh[tIdx * E + e] = 1));
  return { onehot: [tf.tensor2d(oh, [N, E])], keep: [tf.tensor2d(Float32Array.from(keep), [N, 1])], fraction: tf.tensor2d(Float32Array.from(fraction), [G, E]), groups: G };
}

test('gate/combine path into the router: autodiff equals the design note and finite differences', (t) => {
  const N = 8, E = 4, d = 3;
  const logits = randomArray(N * E, 7, 1.5);
  const o = randomArray(N * d, 8);
  const delta = randomArray(N * d, 9); // δ = ∂L/∂y
  const choice = Array.from({ length: N }, (_, i) => i % E);
  const keep = choice.map((_, i) => (i === 3 ? 0 : 1));
  const rc = constants(N, E, 1, choice, keep, [0.25, 0.25, 0.25, 0.25]);
  const L = (z: Float32Array) => tf.tidy(() => tf.sum(combine(tf.tensor2d(z, [N, E]), [tf.tensor2d(o, [N, d])], rc, moe()).mul(tf.tensor2d(delta, [N, d]))).dataSync()[0]!);
  const auto = tf.tidy(() => tf.grad((z: tf.Tensor) => tf.sum(combine(z as tf.Tensor2D, [tf.tensor2d(o, [N, d])], rc, moe()).mul(tf.tensor2d(delta, [N, d]))))(tf.tensor2d(logits, [N, E])).dataSync());
  // design note: ∂L/∂g_t = keep·⟨δ_t, o_t⟩;  ∂L/∂z_{t,j} = ∂L/∂g_t · p_{t,e} · (1[j = e] − p_{t,j})
  for (let tok = 0; tok < N; tok++) {
    const z = Array.from(logits.subarray(tok * E, tok * E + E));
    const m = Math.max(...z);
    const ex = z.map((v) => Math.exp(v - m));
    const p = ex.map((v) => v / ex.reduce((a, b) => a + b, 0));
    let dg = 0;
    for (let i = 0; i < d; i++) dg += delta[tok * d + i]! * o[tok * d + i]!;
    dg *= keep[tok]!;
    const e = choice[tok]!;
    for (let j = 0; j < E; j++) t.true(Math.abs(auto[tok * E + j]! - dg * p[e]! * ((j === e ? 1 : 0) - p[j]!)) < 1e-5);
  }
  checkGrad(t, 'dL/dz', L, logits, auto);
});

test('balance loss gradient equals (αN/S)·p_j·(f_j − Σ_i f_i p_i) per group, and finite differences', (t) => {
  const N = 12, E = 3, G = 2, S = N / G, alpha = 0.1;
  const logits = randomArray(N * E, 12, 1.2);
  const fraction = [0.5, 1 / 3, 1 / 6, 1 / 6, 1 / 6, 2 / 3];
  const rc = constants(N, E, G, new Array(N).fill(0), new Array(N).fill(1), fraction);
  const auto = tf.tidy(() => tf.grad((z: tf.Tensor) => balanceLoss(z as tf.Tensor2D, rc, moe({ balance_loss_coef: alpha })))(tf.tensor2d(logits, [N, E])).dataSync());
  for (let tok = 0; tok < N; tok++) {
    const g = Math.floor(tok / S);
    const z = Array.from(logits.subarray(tok * E, tok * E + E));
    const ex = z.map((v) => Math.exp(v));
    const p = ex.map((v) => v / ex.reduce((a, b) => a + b, 0));
    const f = fraction.slice(g * E, g * E + E);
    const fp = f.reduce((a, fi, i) => a + fi * p[i]!, 0);
    // averaged over the G groups
    for (let j = 0; j < E; j++) t.true(Math.abs(auto[tok * E + j]! - ((alpha * E) / S / G) * p[j]! * (f[j]! - fp)) < 1e-6);
  }
  checkGrad(t, 'dB/dz', (z) => tf.tidy(() => balanceLoss(tf.tensor2d(z, [N, E]), rc, moe({ balance_loss_coef: alpha })).dataSync()[0]!), logits, auto);
});

test('z-loss gradient equals (2c/S)·logsumexp(z)·p, and finite differences', (t) => {
  const N = 10, E = 4, c = 0.01;
  const logits = randomArray(N * E, 13, 2);
  const auto = tf.tidy(() => tf.grad((z: tf.Tensor) => zLoss(z as tf.Tensor2D, moe({ z_loss_coef: c })))(tf.tensor2d(logits, [N, E])).dataSync());
  for (let tok = 0; tok < N; tok++) {
    const z = Array.from(logits.subarray(tok * E, tok * E + E));
    const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
    for (let j = 0; j < E; j++) t.true(Math.abs(auto[tok * E + j]! - ((2 * c) / N) * lse * Math.exp(z[j]! - lse)) < 1e-6);
  }
  checkGrad(t, 'dZ/dz', (z) => tf.tidy(() => zLoss(tf.tensor2d(z, [N, E]), moe({ z_loss_coef: c })).dataSync()[0]!), logits, auto);
});

test('balance loss closed forms: uniform routing gives α, everything on one expert gives α·N', (t) => {
  const N = 16, E = 4, alpha = 0.01;
  const uniform = constants(N, E, 1, new Array(N).fill(0), new Array(N).fill(1), [0.25, 0.25, 0.25, 0.25]);
  const b1 = tf.tidy(() => balanceLoss(tf.zeros([N, E]) as tf.Tensor2D, uniform, moe({ balance_loss_coef: alpha })).dataSync()[0]!);
  t.true(Math.abs(b1 - alpha) < 1e-8, `uniform: ${b1}`);
  const one = constants(N, E, 2, new Array(N).fill(0), new Array(N).fill(1), [1, 0, 0, 0, 1, 0, 0, 0]);
  const z = Float32Array.from({ length: N * E }, (_, i) => (i % E === 0 ? 50 : 0));
  const b2 = tf.tidy(() => balanceLoss(tf.tensor2d(z, [N, E]), one, moe({ balance_loss_coef: alpha })).dataSync()[0]!);
  t.true(Math.abs(b2 - alpha * E) < 1e-7, `one expert: ${b2}`);
  const zl = tf.tidy(() => zLoss(tf.zeros([N, E]) as tf.Tensor2D, moe({ z_loss_coef: 0.5 })).dataSync()[0]!);
  t.true(Math.abs(zl - 0.5 * Math.log(E) ** 2) < 1e-6, 'z-loss of zero logits = c·(log E)²');
});

/** Plain tfjs reference: per-head batched matmuls, a causal mask, softmax. */
function attentionReference(qkv: tf.Tensor2D, B: number, T: number, H: number): tf.Tensor2D {
  const d = qkv.shape[1] / 3, hd = d / H;
  const [q, k, v] = tf.split(qkv, 3, 1).map((x) => x.reshape([B, T, H, hd]).transpose([0, 2, 1, 3]));
  const s = tf.matMul(q!, tf.transpose(k!, [0, 1, 3, 2])).mul(1 / Math.sqrt(hd));
  const mask = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
  return tf.matMul(tf.softmax(s.add(tf.sub(1, mask).mul(-1e9))), v!).transpose([0, 2, 1, 3]).reshape([B * T, d]) as tf.Tensor2D;
}

for (const impl of ['wasm', 'js'] as const) {
  test(`fused causal attention (${impl}): equals the tfjs reference, finite differences for qkv, causal`, (t) => {
    const B = 2, T = 6, H = 2, d = 8;
    const shape = { batch: B, seqLen: T, heads: H };
    const qkv = randomArray(B * T * 3 * d, 21);
    const R = randomArray(B * T * d, 24);
    const run = (x: Float32Array) => causalAttention(tf.tensor2d(x, [B * T, 3 * d]), shape, impl);
    const out = tf.tidy(() => run(qkv).dataSync());
    const ref = tf.tidy(() => attentionReference(tf.tensor2d(qkv, [B * T, 3 * d]), B, T, H).dataSync());
    for (let i = 0; i < out.length; i++) t.true(Math.abs(out[i]! - ref[i]!) < 1e-5, `output ${i}: ${out[i]} vs ${ref[i]}`);
    const L = (x: Float32Array) => tf.tidy(() => tf.sum(run(x).mul(tf.tensor2d(R, [B * T, d]))).dataSync()[0]!);
    const g = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(causalAttention(x as tf.Tensor2D, shape, impl).mul(tf.tensor2d(R, [B * T, d]))))(tf.tensor2d(qkv, [B * T, 3 * d])).dataSync());
    const gRef = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(attentionReference(x as tf.Tensor2D, B, T, H).mul(tf.tensor2d(R, [B * T, d]))))(tf.tensor2d(qkv, [B * T, 3 * d])).dataSync());
    for (let i = 0; i < g.length; i++) t.true(Math.abs(g[i]! - gRef[i]!) < 1e-5, `gradient ${i}: ${g[i]} vs ${gRef[i]}`);
    checkGrad(t, 'dqkv', L, qkv, g);
    // the last token's key and value do not change any earlier output
    const moved = Float32Array.from(qkv);
    for (let c = d; c < 3 * d; c++) moved[(T - 1) * 3 * d + c] = 9;
    const out2 = tf.tidy(() => run(moved).dataSync());
    for (let i = 0; i < (T - 1) * d; i++) t.is(out[i], out2[i]);
  });
}

test('registered BatchMatMul gradient (explicit transposes) matches finite differences for all transpose flags', (t) => {
  const A = randomArray(12, 31), Bm = randomArray(12, 32);
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    const sa = ta ? [4, 3] : [3, 4], sb = tb ? [3, 4] : [4, 3];
    const R = randomArray(9, 33);
    const f = (a: Float32Array, b: Float32Array) => tf.tidy(() => tf.sum(tf.matMul(tf.tensor2d(a, sa as [number, number]), tf.tensor2d(b, sb as [number, number]), ta, tb).mul(tf.tensor2d(R, [3, 3]))).dataSync()[0]!);
    const g = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb).mul(tf.tensor2d(R, [3, 3]))))([tf.tensor2d(A, sa as [number, number]), tf.tensor2d(Bm, sb as [number, number])]).map((x) => x.dataSync()));
    checkGrad(t, `da(${ta},${tb})`, (a) => f(a, Bm), A, g[0]!);
    checkGrad(t, `db(${ta},${tb})`, (b) => f(A, b), Bm, g[1]!);
  }
});

test('registered BatchMatMul gradient keeps broadcast batch dimensions: finite differences for [1,3,4]·[2,4,3] and [2,3,4]·[4,3]', (t) => {
  for (const [sa, sb, so] of [[[1, 3, 4], [2, 4, 3], [2, 3, 3]], [[2, 3, 4], [1, 4, 3], [2, 3, 3]], [[2, 3, 4], [4, 3], [2, 3, 3]]] as const) {
    const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
    const A = randomArray(size(sa), 41), Bm = randomArray(size(sb), 42), R = randomArray(size(so), 43);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.matMul(a, b).mul(tf.tensor(R, [...so])));
    const f = (a: Float32Array, b: Float32Array) => tf.tidy(() => loss(tf.tensor(a, [...sa]), tf.tensor(b, [...sb])).dataSync()[0]!);
    const g = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => loss(a, b) as tf.Scalar)([tf.tensor(A, [...sa]), tf.tensor(Bm, [...sb])]).map((x) => {
      t.deepEqual(x.shape, x.size === size(sa) ? [...sa] : [...sb]);
      return x.dataSync();
    }));
    checkGrad(t, `da [${sa}]·[${sb}]`, (a) => f(a, Bm), A, g[0]!);
    checkGrad(t, `db [${sa}]·[${sb}]`, (b) => f(A, b), Bm, g[1]!);
  }
});
