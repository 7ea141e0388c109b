import test from 'ava';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// src/core/util/tfjs.cjs loads @tensorflow/tfjs without the four packages it only re-exports; checked in a
// fresh process, since this one has loaded tfjs already.
const TFJS = fileURLToPath(new URL('../src/core/util/tfjs.cjs', import.meta.url));

test('tfjs loads without layers, converter, data and webgl, with its gradients, and leaves them loadable', (t) => {
  const script = `
    const tf = require(${JSON.stringify(TFJS)});
    const unused = /@tensorflow[\\\\/]tfjs-(layers|converter|data|backend-webgl)[\\\\/]/;
    const loaded = Object.keys(require.cache).filter((f) => unused.test(f));
    const grad = Array.from(tf.grad((x) => x.square().sum())(tf.tensor1d([1, 2, 3])).dataSync());
    const chained = tf.tensor1d([1, 4]).sqrt().arraySync();
    const layers = require('@tensorflow/tfjs-layers');
    console.log(JSON.stringify({ loaded, grad, chained, sequential: typeof layers.sequential, core: tf.version_core }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .trim().split('\n').at(-1)!);
  t.deepEqual(out.loaded, [], 'none of the four was read while tfjs loaded');
  t.deepEqual(out.grad, [2, 4, 6], 'the gradients tfjs registers on top of tfjs-core are there');
  t.deepEqual(out.chained, [1, 2], 'and its chained ops');
  t.is(out.sequential, 'function', 'a later require of tfjs-layers gets the real package');
  t.regex(out.core, /^\d+\.\d+\.\d+$/);
});
