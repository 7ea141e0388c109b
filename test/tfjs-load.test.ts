import test from 'ava';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// src/core/util/tfjs.cjs loads @tensorflow/tfjs without the four packages it only re-exports, and
// tfjs-full.cjs adds them back; checked in fresh processes, since this one has loaded tfjs already.
const util = (f: string) => JSON.stringify(fileURLToPath(new URL(`../src/core/util/${f}`, import.meta.url)));

/** runs `script` in a fresh node; its last line of output, parsed */
function fresh(script: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

test('tfjs loads without layers, converter, data and webgl, with its gradients, and leaves them loadable', (t) => {
  const out = fresh(`
    const tf = require(${util('tfjs.cjs')});
    const unused = /@tensorflow[\\\\/]tfjs-(layers|converter|data|backend-webgl)[\\\\/]/;
    const loaded = Object.keys(require.cache).filter((f) => unused.test(f));
    const grad = Array.from(tf.grad((x) => x.square().sum())(tf.tensor1d([1, 2, 3])).dataSync());
    const chained = tf.tensor1d([1, 4]).sqrt().arraySync();
    const layers = require('@tensorflow/tfjs-layers');
    console.log(JSON.stringify({ loaded, grad, chained, sequential: typeof layers.sequential, core: tf.version_core,
      callback: typeof tf.CustomCallback }));`);
  t.deepEqual(out.loaded, [], 'none of the four was read while tfjs loaded');
  t.deepEqual(out.grad, [2, 4, 6], 'the gradients tfjs registers on top of tfjs-core are there');
  t.deepEqual(out.chained, [1, 2], 'and its chained ops');
  t.is(out.sequential, 'function', 'a later require of tfjs-layers gets the real package');
  t.regex(out.core as string, /^\d+\.\d+\.\d+$/);
  t.is(out.callback, 'undefined', 'the union itself stays without them');
});

test('tfjs-full.cjs gives the one union all of it, as tfjs-node needs it (a class extending CustomCallback)', (t) => {
  const out = fresh(`
    const tf = require(${util('tfjs.cjs')});
    const full = require(${util('tfjs-full.cjs')});
    const union = require('@tensorflow/tfjs');
    class Progress extends union.CustomCallback { constructor() { super({}); } }
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [2] })] });
    console.log(JSON.stringify({ same: full === tf && union === tf, callback: typeof new Progress().onBatchEnd,
      register: typeof tf.registerCallbackConstructor, shape: model.predict(tf.ones([1, 2])).shape,
      data: typeof tf.data.array, graph: typeof tf.loadGraphModel, layersVersion: tf.version['tfjs-layers'],
      real: require('@tensorflow/tfjs-layers').version_layers }));`);
  t.true(out.same, 'the object every module holds as tf');
  t.is(out.callback, 'function');
  t.is(out.register, 'function');
  t.deepEqual(out.shape, [1, 3]);
  t.is(out.data, 'function');
  t.is(out.graph, 'function');
  t.is(out.layersVersion, out.real);
});
