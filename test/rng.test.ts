import test from 'ava';
import { Rng, rngFor } from '../src/core/util/rng.js';
import { StepContext } from '../src/runtime/coordinator/step-context.js';
import { backend, cfg } from './helpers.js';

/**
 * The stream every run's batches, weights and jitter come from: the first draws and the 100,000th for two
 * seeds, recorded from the implementation with four number fields before its state moved into an Int32Array
 * (a change of representation that must not change one bit, or every saved run's batches would differ).
 */
test('sfc32 draws the same stream as before: seeds 1 and 2^31, first four draws and the 100,000th', (t) => {
  const cases = [
    { seed: 1, first: [1828152527, 3394835397, 2967886022, 2251045104], at100k: 490064786 },
    { seed: 0x80000000, first: [3497283522, 1389284052, 3387863705, 1724742077], at100k: 2568710598 },
  ];
  for (const c of cases) {
    const r = new Rng(c.seed);
    t.deepEqual([r.u32(), r.u32(), r.u32(), r.u32()], c.first, `seed ${c.seed}`);
    const q = new Rng(c.seed);
    for (let i = 0; i < 99_999; i++) q.u32();
    t.is(q.u32(), c.at100k, `seed ${c.seed}, draw 100,000`);
  }
});

test('a step\'s draws: jitter is 1 − ε + 2ε·u and the dropout mask 0 where u < p, else 1/(1 − p), from each sequence\'s own stream', async (t) => {
  await backend();
  const config = cfg('model.dropout=0.3', 'moe.router_jitter=0.05', 'seed=7');
  const [batch, T, cols] = [3, 4, 5];
  const ctx = new StepContext(config, batch, 'train', 11, new Int32Array(batch * T), undefined, 0, 2);
  const jitter = ctx.jitter(1, [batch * T, cols])!.dataSync();
  const mask = ctx.mask('ffn', [batch * T, cols])!.dataSync();
  const eps = 0.05, p = 0.3;
  for (let b = 0; b < batch; b++) {
    // the stream of (seed, site, step, the sequence's index in the whole batch: firstSeq 2 + b)
    const rj = rngFor(7, 'jitter:1', 11, 2 + b), rm = rngFor(7, 'dropout:ffn', 11, 2 + b);
    for (let i = b * T * cols; i < (b + 1) * T * cols; i++) {
      t.is(jitter[i], Math.fround(1 - eps + 2 * eps * rj.uniform()), `jitter ${i}`);
      t.is(mask[i], rm.uniform() < p ? 0 : Math.fround(1 / (1 - p)), `mask ${i}`);
    }
  }
  ctx.dispose();
});
