import test from 'ava';
import tf from '../src/core/util/tfjs.cjs';
import { updateBias } from '../src/core/router/bias.js';
import { chooseExperts, groupsSpanned } from '../src/core/router/choose.js';
import { balanceLoss, combine, routingConstants } from '../src/core/router/gates.js';
import { hashExperts, hashTable } from '../src/core/router/hash.js';
import { planRouting } from '../src/core/router/plan.js';
import { backend, cfg, finiteDiff, randomArray, relErr } from './helpers.js';

test.before(backend);

const moe = (over: Partial<ReturnType<typeof cfg>['moe']> = {}) => ({ ...cfg().moe, ...over });

// Device-limited routing, a 2-group, 4-expert, 3-token case worked by hand: group 0 holds experts
// {0, 1}, group 1 holds {2, 3}; top-2 with route_group_topk 1, so a group scores the sum of its best
// ⌊2/1⌋ = 2 scores and each token keeps one group.
//   t0 [0.90 0.10 0.60 0.50]  groups 1.00 | 1.10 → group 1: experts 2, 3   (plain top-2: 0, 2)
//   t1 [0.20 0.30 0.90 0.10]  groups 0.50 | 1.00 → group 1: experts 2, 3   (plain top-2: 2, 1)
//   t2 [0.80 0.70 0.95 0.00]  groups 1.50 | 0.95 → group 0: experts 0, 1   (plain top-2: 2, 0)
const scores = Float32Array.from([0.9, 0.1, 0.6, 0.5, 0.2, 0.3, 0.9, 0.1, 0.8, 0.7, 0.95, 0]);

test('device-limited routing: each token\'s experts come from its best group only, worked by hand', (t) => {
  const limited = chooseExperts(scores, 4, { topK: 2, groups: { count: 2, topK: 1 } });
  t.deepEqual(Array.from(limited), [2, 3, 2, 3, 0, 1]);
  t.deepEqual(Array.from(groupsSpanned(limited, 2, 4, 2)), [1, 1, 1]);
  const plain = chooseExperts(scores, 4, { topK: 2 });
  t.deepEqual(Array.from(plain), [0, 2, 2, 1, 2, 0]);
  t.deepEqual(Array.from(groupsSpanned(plain, 2, 4, 2)), [2, 2, 2]);
  t.deepEqual(Array.from(chooseExperts(scores, 4, { topK: 2, groups: { count: 2, topK: 2 } })), Array.from(plain), 'keeping every group is no limit');
  // the plan carries the choice; its gate probabilities are the scores of the chosen experts
  const plan = planRouting(scores, 4, { groups: 1, topK: 2, capacityFactor: 2, minCapacity: 1, dropTokens: true, policy: 'position', routeGroups: { count: 2, topK: 1 } });
  t.deepEqual(Array.from(plan.expert), [2, 3, 2, 3, 0, 1]);
  t.deepEqual(Array.from(plan.prob), [0.6, 0.5, 0.9, 0.1, 0.8, 0.7].map((v) => Math.fround(v)));
});

test('aux-free balancing: one bias update step moves each bias by γ against its load; the bias chooses, the gate stays the score', (t) => {
  // load [10, 2, 4, 0], mean 4: expert 0 over (−γ), 1 under (+γ), 2 at the mean (0), 3 under (+γ)
  const bias = new Float32Array(4);
  updateBias(bias, [10, 2, 4, 0], 1e-3);
  t.deepEqual(Array.from(bias), [-1e-3, 1e-3, 0, 1e-3].map((v) => Math.fround(v)));
  updateBias(bias, [10, 2, 4, 0], 1e-3);
  t.deepEqual(Array.from(bias), [-2e-3, 2e-3, 0, 2e-3].map((v) => Math.fround(v)));
  // one token [0.50, 0.49]: plain top-1 is expert 0; a bias of −0.02 on expert 0 sends it to expert 1, gate 0.49
  const p = Float32Array.from([0.5, 0.49]);
  const opts = { groups: 1, topK: 1, capacityFactor: 2, minCapacity: 1, dropTokens: true, policy: 'position' } as const;
  t.deepEqual(Array.from(planRouting(p, 2, opts).expert), [0]);
  const biased = planRouting(p, 2, { ...opts, bias: Float32Array.from([-0.02, 0]) });
  t.deepEqual(Array.from(biased.expert), [1]);
  t.is(biased.prob[0], Math.fround(0.49));
});

test('hash routing: a balanced, seeded table of token ids, its own per layer; the plan follows it', (t) => {
  const table = hashTable(7, 0, 10, 4);
  const perExpert = [0, 1, 2, 3].map((e) => table.filter((x) => x === e).length);
  t.deepEqual(perExpert.sort(), [2, 2, 3, 3], '10 ids over 4 experts: 3, 3, 2, 2');
  t.deepEqual(Array.from(hashTable(7, 0, 10, 4)), Array.from(table), 'seeded');
  t.notDeepEqual(Array.from(hashTable(7, 1, 10, 4)), Array.from(table), 'another layer, another table');
  const ids = Int32Array.from([3, 3, 9, 0]);
  const hashed = hashExperts(table, ids);
  t.deepEqual(Array.from(hashed), [table[3], table[3], table[9], table[0]]);
  const plan = planRouting(new Float32Array(16).fill(0.25), 4, { groups: 1, topK: 1, capacityFactor: 4, minCapacity: 1, dropTokens: true, policy: 'position', hashed });
  t.deepEqual(Array.from(plan.expert), Array.from(hashed));
  t.throws(() => hashExperts(table, Int32Array.from([10])), { message: /token id 10 is outside the table's 10 ids/ });
});

function constants(N: number, E: number, K: number, experts: number[], seqLen?: number) {
  return routingConstants({ groups: 1, groupOffset: 0, experts: E, topK: K, tokensPerGroup: N, capacity: N, expert: Int32Array.from(experts), slot: Int32Array.from(experts.map((_, i) => i)), prob: new Float32Array(N * K), counts: new Int32Array(E), routed: Int32Array.from({ length: E }, (_, e) => experts.filter((x, i) => i % K === 0 && x === e).length), dropped: 0 }, seqLen);
}

test('sigmoid top-2 gates: g = s_e / Σ chosen s, × topk_scaling; unnormalised with norm_topk false; autodiff agrees with finite differences', (t) => {
  const N = 3, E = 4, d = 2;
  const z = Float32Array.from([0.3, -1, 2, 0.5, 1, 1.5, -0.2, 0, -0.4, 0.1, 0.9, -2]);
  const experts = [2, 3, 1, 0, 2, 1]; // chosen by hand, any pair
  const rc = constants(N, E, 2, experts);
  const ones = [tf.ones([N, d]) as tf.Tensor2D, tf.zeros([N, d]) as tf.Tensor2D]; // y = g¹ (first choice's gate) in every column
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const y = tf.tidy(() => combine(tf.tensor2d(z, [N, E]), ones, rc, moe({ score: 'sigmoid', top_k: 2, topk_scaling: 2.5 })).dataSync());
  for (let tok = 0; tok < N; tok++) {
    const [a, b] = [sig(z[tok * E + experts[tok * 2]!]!), sig(z[tok * E + experts[tok * 2 + 1]!]!)];
    t.true(Math.abs(y[tok * d]! - (2.5 * a) / (a + b)) < 1e-6, `token ${tok}: ${y[tok * d]} vs ${(2.5 * a) / (a + b)}`);
  }
  const raw = tf.tidy(() => combine(tf.tensor2d(z, [N, E]), ones, rc, moe({ score: 'sigmoid', top_k: 2, norm_topk: false })).dataSync());
  t.true(Math.abs(raw[0]! - sig(z[2]!)) < 1e-6, 'norm_topk false: the score itself');
  const o = [tf.tensor2d(randomArray(N * d, 3), [N, d]), tf.tensor2d(randomArray(N * d, 4), [N, d])];
  const delta = tf.tensor2d(randomArray(N * d, 5), [N, d]);
  const m = moe({ score: 'sigmoid', top_k: 2 });
  const L = (v: Float32Array) => tf.tidy(() => tf.sum(combine(tf.tensor2d(v, [N, E]), o, rc, m).mul(delta)).dataSync()[0]!);
  const g = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(combine(v as tf.Tensor2D, o, rc, m).mul(delta)))(tf.tensor2d(z, [N, E])).dataSync());
  const idx = [0, 2, 3, 5, 6, 9];
  finiteDiff(L, z, idx).forEach((fd, j) => t.true(relErr(g[idx[j]!]!, fd) < 2e-2, `∂L/∂z[${idx[j]}]: ${g[idx[j]!]} vs ${fd}`));
  // hash: the gate is 1, whatever the logits
  const h = tf.tidy(() => combine(tf.tensor2d(z, [N, E]), [ones[0]!], constants(N, E, 1, [2, 1, 0]), moe({ router: 'hash', balance: 'none' })).dataSync());
  t.deepEqual(Array.from(h), new Array(N * d).fill(1));
});

test('sequence-wise balance loss (DeepSeek-V3): α at uniform routing, α·E when every token of a sequence picks one expert; its gradient matches finite differences', (t) => {
  const E = 4, T = 8, B = 2, N = B * T, alpha = 0.01;
  const m = moe({ balance: 'seq_aux_loss', balance_loss_coef: alpha });
  // uniform scores (zero logits) and each sequence spreading its tokens evenly: f'_i = 1, P_i = 1/4 → α
  const even = constants(N, E, 1, Array.from({ length: N }, (_, i) => i % E), T);
  const b1 = tf.tidy(() => balanceLoss(tf.zeros([N, E]) as tf.Tensor2D, even, m).dataSync()[0]!);
  t.true(Math.abs(b1 - alpha) < 1e-7, `uniform: ${b1}`);
  // every token on expert 0 with all its score there: f'_0 = E, P_0 = 1 → α·E
  const one = constants(N, E, 1, new Array(N).fill(0), T);
  const z = Float32Array.from({ length: N * E }, (_, i) => (i % E === 0 ? 50 : 0));
  const b2 = tf.tidy(() => balanceLoss(tf.tensor2d(z, [N, E]), one, m).dataSync()[0]!);
  t.true(Math.abs(b2 - alpha * E) < 1e-6, `one expert: ${b2}`);
  // gradient, with sigmoid scores too (normalised over the experts for P)
  for (const score of ['softmax', 'sigmoid'] as const) {
    const ms = { ...m, score };
    const rc = constants(N, E, 1, Array.from({ length: N }, (_, i) => (i * 7) % E), T);
    const logits = randomArray(N * E, 21, 1.3);
    const g = tf.tidy(() => tf.grad((v: tf.Tensor) => balanceLoss(v as tf.Tensor2D, rc, ms))(tf.tensor2d(logits, [N, E])).dataSync());
    const idx = [1, 9, 17, 30, 44, 63];
    finiteDiff((v) => tf.tidy(() => balanceLoss(tf.tensor2d(v, [N, E]), rc, ms).dataSync()[0]!), logits, idx).forEach((fd, j) =>
      t.true(relErr(g[idx[j]!]!, fd) < 2e-2, `${score} ∂B/∂z[${idx[j]}]: ${g[idx[j]!]} vs ${fd}`));
  }
  t.is(tf.tidy(() => balanceLoss(tf.zeros([N, E]) as tf.Tensor2D, even, moe({ balance: 'aux_free' })).dataSync()[0]), 0, 'aux_free: no loss');
});

test('router options are validated: one line naming the key and the rule', (t) => {
  const bad: [string[], RegExp][] = [
    [['moe.score=sigmoid', 'moe.top_k=1'], /moe\.norm_topk must be false with moe\.score sigmoid and moe\.top_k 1/],
    [['moe.router=hash'], /moe\.balance must be none with moe\.router hash/],
    [['moe.router=hash', 'moe.balance=none', 'moe.top_k=2'], /moe\.top_k must be 1 with moe\.router hash/],
    [['moe.n_experts=6', 'moe.top_k=2', 'moe.route_groups=4', 'moe.route_group_topk=1'], /moe\.route_groups must divide moe\.n_experts \(6\) into equal groups \(got 4\)/],
    [['moe.n_experts=8', 'moe.top_k=4', 'moe.route_groups=2', 'moe.route_group_topk=3'], /moe\.route_group_topk must be <= moe\.route_groups \(2\)/],
    [['moe.n_experts=8', 'moe.top_k=1', 'moe.route_groups=4', 'moe.route_group_topk=2'], /moe\.route_group_topk must be <= moe\.top_k \(1\)/],
    [['moe.balance=aux'], /moe\.balance/],
  ];
  for (const [sets, message] of bad) t.throws(() => cfg(...sets), { message }, sets.join(' '));
  t.notThrows(() => cfg('moe.score=sigmoid', 'moe.top_k=1', 'moe.norm_topk=false', 'moe.balance=aux_free'));
  t.notThrows(() => cfg('moe.n_experts=8', 'moe.top_k=2', 'parallel.devices=4', 'moe.route_group_topk=1'), 'groups default to one per device');
});
