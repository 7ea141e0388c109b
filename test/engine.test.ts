import test from 'ava';
import tf from '../src/core/util/tfjs.cjs';
import { allocateLayerBuffers } from '../src/core/comm/buffers.js';
import { Engine } from '../src/runtime/coordinator/engine.js';
import { SwitchDispatcher } from '../src/runtime/coordinator/switch-dispatch.js';
import { LocalDevice } from '../src/runtime/devices/local-device.js';
import { initCoordinatorParams } from '../src/core/model/params.js';
import { switchBlocks } from '../src/core/model/stages.js';
import { backend, cfg, relErr } from './helpers.js';

test.before(backend);

const V = 11;

async function makeEngine(...sets: string[]) {
  const config = cfg('model.d_model=16', 'model.n_heads=2', 'model.n_layers=3', 'model.d_ff=24', 'moe.n_experts=4', 'parallel.devices=2',
    'data.batch_size=2', 'data.seq_len=8', 'moe.router_jitter=0', 'moe.capacity_factor=1.0', 'moe.balance_loss_coef=0.05', 'moe.z_loss_coef=0.01', ...sets);
  const blocks = switchBlocks(config);
  const buffers = blocks.map(() => allocateLayerBuffers(2, 4, 8, 16));
  const devices = Array.from({ length: 2 }, (_, i) => new LocalDevice(config, i, blocks, buffers));
  const engine = new Engine(config, initCoordinatorParams(config, V), new SwitchDispatcher(config, devices, buffers));
  return { config, engine, devices };
}

const x = Int32Array.from({ length: 16 }, (_, i) => (i * 7) % V);
const y = Int32Array.from({ length: 16 }, (_, i) => (i * 5 + 3) % V);

/** Central differences of the whole step's loss against the engine's accumulated gradients, at two entries of each named weight. */
async function checkWholeLoss(t: import('ava').ExecutionContext, engine: Engine, names: string[]): Promise<void> {
  engine.zeroGrads();
  await engine.trainStep(x, y, 2, 1);
  const lossAt = async () => {
    const r = await engine.trainStep(x, y, 2, 1);
    return r.loss;
  };
  const grads = new Map([...engine.grads].map(([k, v]) => [k, Float32Array.from(v)]));
  const h = 1e-3;
  let checked = 0;
  for (const name of names) {
    const p = engine.params.get(name)!;
    for (const i of [1, Math.floor(p.data.length / 2)]) {
      const orig = p.data[i]!;
      p.data[i] = orig + h;
      engine.refresh();
      const up = await lossAt();
      p.data[i] = orig - h;
      engine.refresh();
      const down = await lossAt();
      p.data[i] = orig;
      engine.refresh();
      const fd = (up - down) / (2 * h);
      const an = grads.get(name)![i]!;
      t.true(relErr(an, fd) < 5e-2 || Math.abs(an - fd) < 5e-4, `${name}[${i}]: analytic ${an} vs finite difference ${fd}`);
      checked++;
    }
  }
  t.is(checked, 2 * names.length);
  engine.dispose();
}

test.serial('gradients chained across Switch layers match finite differences of the whole loss', async (t) => {
  const { engine } = await makeEngine('model.switch_every=1', 'moe.capacity_factor=4'); // no drops: routing must not flip under ±h
  await checkWholeLoss(t, engine, ['wte', 'h.0.attn.w_qkv', 'h.0.router.w', 'h.1.ln1.g', 'h.2.router.w', 'lm_head']);
});

test.serial('shared experts, SwiGLU FFNs and a sigmoid top-2 router with the sequence-wise balance loss: finite differences of the whole loss', async (t) => {
  const { engine } = await makeEngine('model.switch_every=2', 'moe.capacity_factor=4', 'model.activation=swiglu', 'moe.shared_experts=1', 'moe.d_ff_expert=12',
    'moe.top_k=2', 'moe.score=sigmoid', 'moe.balance=seq_aux_loss');
  t.deepEqual(engine.params.get('h.1.shared.0.w1')!.shape, [16, 24], 'a shared expert of d_ff_expert 12, gate | up');
  await checkWholeLoss(t, engine, ['h.1.shared.0.w1', 'h.1.shared.0.b1', 'h.1.shared.0.w2', 'h.1.router.w', 'h.0.ffn.w1', 'h.2.ffn.w2', 'h.1.attn.w_qkv']);
});

test.serial('no tensor leaks: tf.memory().numTensors is flat across steps (train and eval)', async (t) => {
  const { engine } = await makeEngine('moe.top_k=2', 'model.dropout=0.1', 'moe.router_jitter=0.01', 'moe.shared_experts=1');
  await engine.trainStep(x, y, 2, 1);
  await engine.evaluate(x, y, 2, 1);
  const before = tf.memory().numTensors;
  for (let s = 2; s < 5; s++) {
    await engine.trainStep(x, y, 2, s);
    await engine.evaluate(x, y, 2, s);
    engine.refresh();
  }
  t.is(tf.memory().numTensors, before);
  engine.dispose();
});

test.serial('router statistics: counts before dropping, kept tokens, drop fraction', async (t) => {
  const { engine } = await makeEngine('moe.capacity_factor=0.5');
  const r = await engine.trainStep(x, y, 2, 1);
  t.is(r.layers.length, 3);
  for (const l of r.layers) {
    t.is(l.group_expert_counts.length, 2);
    t.is(l.group_expert_counts.flat().reduce((a, b) => a + b, 0), 16);
    t.is(l.capacity, 4); // max(min_capacity 4, ⌊0.5 · 8 / 4⌋ = 1), at most S = 8
    t.is(l.tokens_per_expert.reduce((a, b) => a + b, 0), 16 * (1 - l.drop_fraction));
  }
  t.pass();
});


test.serial('generation routes its window without drops: the last position (the one predicted) always gets its expert', async (t) => {
  const { engine, config } = await makeEngine('model.switch_every=1', 'moe.eval_capacity_factor=1');
  // every token to expert 0: LN₂ outputs the constant 5 (gain 0, bias 5) and the router favours expert 0
  for (let l = 0; l < config.model.n_layers; l++) {
    engine.params.get(`h.${l}.ln2.g`)!.data.fill(0);
    engine.params.get(`h.${l}.ln2.b`)!.data.fill(5);
    const w = engine.params.get(`h.${l}.router.w`)!.data;
    w.fill(0);
    for (let i = 0; i < config.model.d_model; i++) w[i * config.moe.n_experts] = 1;
  }
  engine.refresh();
  const window = x.subarray(0, 8);
  const gen = await engine.nextTokenLogits(window, 1);
  t.is(gen.layers.length, 3);
  for (const l of gen.layers) {
    t.is(l.drop_fraction, 0);
    t.deepEqual(l.tokens_per_expert, [8, 0, 0, 0]);
  }
  // the same window evaluated as a batch drops all but C = 4 of expert 0's tokens (the last ones, under position)
  const ev = await engine.evaluate(window, window, 1, 1);
  t.true(ev.layers.every((l) => l.drop_fraction === 0.5), JSON.stringify(ev.layers.map((l) => l.drop_fraction)));
  engine.dispose();
});
