import test from 'ava';
import tf from '../src/core/util/tfjs.cjs';
import { backprop, record, release } from '../src/core/backend/tape.js';
import { BackendError, checkTfjsVersions, TFJS_VERSION } from '../src/core/backend/init.js';
import { causalAttention } from '../src/core/model/attention.js';
import { layerNorm } from '../src/core/model/layers.js';
import { backend, maxAbsDiff, randomArray } from './helpers.js';

test.before(backend);

test('record now, backprop later equals tf.grads (two outputs with seeds, a custom-gradient op, unused inputs get zeros)', (t) => {
  const B = 2, T = 4, H = 2, d = 8;
  const x = tf.tensor2d(randomArray(B * T * d, 1), [B * T, d]);
  const w = tf.tensor2d(randomArray(d * 3 * d, 2, 0.5), [d, 3 * d]);
  const g = tf.ones([d]), b = tf.zeros([d]);
  const unused = tf.ones([3]);
  const dy1 = tf.tensor2d(randomArray(B * T * d, 3), [B * T, d]);
  const dy2 = tf.scalar(0.7);
  const f = (x: tf.Tensor, w: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const h = layerNorm(x as tf.Tensor2D, g, b);
    const a = causalAttention(tf.matMul(h, w as tf.Tensor2D), { batch: B, seqLen: T, heads: H });
    return { a, s: tf.sum(a.square()) as tf.Scalar };
  };
  const expected = tf.grads((x: tf.Tensor, w: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const o = f(x, w, g, b);
    return tf.sum(o.a.mul(dy1)).add(o.s.mul(dy2)) as tf.Scalar;
  })([x, w, g, b]);
  const before = tf.memory().numTensors;
  const rec = record(() => f(x, w, g, b));
  const got = backprop(rec, [[rec.value.a, dy1], [rec.value.s, dy2]], [x, w, g, b, unused]);
  release(rec);
  tf.dispose([rec.value.a, rec.value.s]);
  expected.forEach((e, i) => t.true(maxAbsDiff(e.dataSync(), got[i]!.dataSync()) < 1e-5, `input ${i}`));
  t.deepEqual(Array.from(got[4]!.dataSync()), [0, 0, 0]);
  tf.dispose(got);
  t.is(tf.memory().numTensors, before, 'the recording keeps nothing after release');
});

test('a recorded function that throws leaves no tensor and no tape behind', (t) => {
  const x = tf.tensor2d(randomArray(8 * 4, 5), [8, 4]);
  const w = tf.tensor2d(randomArray(4 * 4, 6), [4, 4]);
  const before = tf.memory().numTensors;
  t.throws(() => record(() => {
    const h = tf.matMul(x, w).relu();
    tf.matMul(h, w).square(); // saved for a backward pass that never comes
    throw new Error('stage failed');
  }), { message: 'stage failed' });
  t.is(tf.memory().numTensors, before, 'saved tensors freed');
  const engine = tf.engine() as unknown as { state: { activeTape: unknown; gradientDepth: number } };
  t.is(engine.state.activeTape, null);
  t.is(engine.state.gradientDepth, 0);
  // and recording works afterwards
  const rec = record(() => ({ y: tf.sum(tf.matMul(x, w)) }));
  const [gw] = backprop(rec, [[rec.value.y, tf.scalar(1)]], [w]);
  t.deepEqual(gw!.shape, [4, 4]);
  release(rec);
  tf.dispose([rec.value.y, gw!]);
  tf.dispose([x, w]);
});

test('tfjs is the pinned release; another version is refused with a clear error', (t) => {
  t.is(tf.version_core, TFJS_VERSION);
  t.notThrows(() => checkTfjsVersions({ core: tf.version_core }));
  t.throws(() => checkTfjsVersions({ core: TFJS_VERSION, wasm: '4.23.0' }), {
    instanceOf: BackendError,
    message: `@tensorflow/tfjs-backend-wasm must be version ${TFJS_VERSION}, which switch-sim's kernels and tape are written against (got 4.23.0); run npm ci to restore the pinned versions`,
  });
});
