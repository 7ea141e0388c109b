import test from 'ava';
import type { Config } from '../src/core/config/defaults.js';
import { train } from '../src/training/trainer.js';
import { cfg, CORPUS, tempDir } from './helpers.js';

// A sweep's comparison paired by seed rests on this: two points that share a seed train on the same
// batches from the same initial values of every weight they have in common, whatever else differs
// (an expert count, a capacity factor), in either layout. Each is trained here, in this process.

const small = (...sets: string[]) => cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2',
  'model.n_layers=2', 'model.d_ff=32', 'parallel.devices=2', 'seed=7', 'train.steps=2', 'train.warmup_steps=1', 'train.log_every=1',
  'train.eval_every=0', 'train.eval_batches=1', ...sets);

interface Seen {
  /** every parameter's values before step 1, by name */
  initial: Map<string, { shape: number[]; data: Float32Array }>;
  /** the (x, y) of every training step and evaluation, in order */
  batches: { kind: 'train' | 'eval'; step: number; x: number[]; y: number[] }[];
}

/** Trains `config` (2 steps, an evaluation), recording the initial parameters and every batch the session is given. */
async function trainAndWatch(t: { teardown: (f: () => void) => void }, config: Config): Promise<Seen> {
  const seen: Seen = { initial: new Map(), batches: [] };
  await train({
    config, name: 'seed', outDir: tempDir(t),
    onReady: async ({ session }) => {
      for (const a of await session.snapshot()) if (a.kind === 'param') seen.initial.set(a.name, { shape: a.shape, data: Float32Array.from(a.data) });
      const trainStep = session.trainStep.bind(session);
      const evaluate = session.evaluate.bind(session);
      session.trainStep = (x, y, batch, step) => {
        seen.batches.push({ kind: 'train', step, x: [...x], y: [...y] });
        return trainStep(x, y, batch, step);
      };
      session.evaluate = (x, y, batch, step) => {
        seen.batches.push({ kind: 'eval', step, x: [...x], y: [...y] });
        return evaluate(x, y, batch, step);
      };
    },
  });
  return seen;
}

/** The parameters the two runs both have, with the same shape, and those they have with different shapes. */
function inCommon(a: Seen, b: Seen): { same: string[]; reshaped: string[] } {
  const both = [...a.initial.keys()].filter((n) => b.initial.has(n));
  const sameShape = (n: string) => JSON.stringify(a.initial.get(n)!.shape) === JSON.stringify(b.initial.get(n)!.shape);
  return { same: both.filter(sameShape), reshaped: both.filter((n) => !sameShape(n)) };
}

const differing = (a: Seen, b: Seen, names: string[]) =>
  names.filter((n) => a.initial.get(n)!.data.some((v, i) => v !== b.initial.get(n)!.data[i]));

for (const layout of ['coordinator', 'spmd'] as const) {
  const plan = layout === 'spmd' ? ['parallel.layout=spmd', 'parallel.transport=threads'] : ['parallel.layout=coordinator', 'parallel.transport=local'];

  test.serial(`${layout}: 4 and 8 experts with one seed share every batch, and every common weight's initial values (experts 0-3 included)`, async (t) => {
    const four = await trainAndWatch(t, small(...plan, 'moe.n_experts=4'));
    const eight = await trainAndWatch(t, small(...plan, 'moe.n_experts=8'));
    t.deepEqual(four.batches.map((b) => [b.kind, b.step]), [['train', 1], ['train', 2], ['eval', 2]]);
    t.deepEqual(eight.batches, four.batches, 'the same batches, step by step, and the same evaluation batch');
    const { same, reshaped } = inCommon(four, eight);
    t.deepEqual(reshaped, ['h.0.router.w', 'h.1.router.w'], 'only the routers (d × E) differ in shape, one per Switch block');
    t.deepEqual([...four.initial.keys()].filter((n) => !eight.initial.has(n)), [], 'the 4-expert model has nothing the 8-expert one lacks');
    const experts = (s: Seen) => [...s.initial.keys()].filter((n) => n.includes('.experts.')).sort();
    t.is(experts(four).length, 2 * 4 * 4, 'two Switch blocks of 4 experts, each w1, b1, w2, b2');
    t.is(experts(eight).length, 2 * 8 * 4);
    t.true(experts(four).every((n) => same.includes(n)), 'experts 0-3 are weights in common');
    t.deepEqual(differing(four, eight, same), [], 'every weight in common starts from the same values');
    // and the values are not trivially equal: the drawn matrices are not constant, and differ from another seed's
    const w1 = four.initial.get('h.1.experts.3.w1')!.data;
    t.true(w1.some((v) => v !== w1[0]));
    if (layout === 'coordinator') {
      const other = await trainAndWatch(t, small(...plan, 'moe.n_experts=4', 'seed=8'));
      t.true(differing(four, other, same.filter((n) => four.initial.get(n)!.data.some((v) => v !== 0 && v !== 1))).length > 0);
      t.notDeepEqual(other.batches[0], four.batches[0], 'another seed, other batches');
    }
  });
}

test.serial('capacity factors 1 and 2 with one seed: the same batches and the same initial values of every weight', async (t) => {
  const plan = ['parallel.layout=coordinator', 'parallel.transport=local'];
  const one = await trainAndWatch(t, small(...plan, 'moe.capacity_factor=1'));
  const two = await trainAndWatch(t, small(...plan, 'moe.capacity_factor=2'));
  t.deepEqual(two.batches, one.batches);
  t.deepEqual([...two.initial.keys()], [...one.initial.keys()]);
  t.deepEqual(inCommon(one, two).reshaped, []);
  t.deepEqual(differing(one, two, [...one.initial.keys()]), []);
});
