// The whole @tensorflow/tfjs, for what needs all of it. tfjs.cjs loads the union package without the four
// packages it only re-exports (tfjs-layers, tfjs-converter, tfjs-data, tfjs-backend-webgl); requiring this
// file adds them to that same module object, as the union's own tf.node.js does when it loads them: every
// name of theirs that the union does not have yet (as a getter), `data` as a namespace, and their entries of
// `version`. @tensorflow/tfjs-node, which `parallel.backend: tensorflow` loads, extends the union's layers
// classes (CustomCallback) when it loads, so src/core/backend/init.ts requires this first.
'use strict';
require('./tfjs.cjs'); // the union, cached: the object every module of the project holds as tf
const union = require('@tensorflow/tfjs');

const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

/** pkg's names as getters on target, those target has not got yet. The union adds core, layers, converter,
 * cpu, webgl in that order, each name from the first that has it; here cpu's came with tfjs.cjs, before layers
 * and converter, which makes no difference: neither exports a name of tfjs-backend-cpu's that tfjs-core lacks */
function reexport(target, pkg) {
  for (const k of Object.keys(pkg))
    if (k !== 'default' && !own(target, k)) Object.defineProperty(target, k, { enumerable: true, get: () => pkg[k] });
  return target;
}

const layers = require('@tensorflow/tfjs-layers');
const converter = require('@tensorflow/tfjs-converter');
const data = require('@tensorflow/tfjs-data');
const webgl = require('@tensorflow/tfjs-backend-webgl');
for (const pkg of [layers, converter, webgl]) reexport(union, pkg);
if (!union.data || !union.data.array)
  union.data = Object.assign(reexport(Object.create(null), data), { default: data });
Object.assign(union.version, { 'tfjs-layers': layers.version_layers, 'tfjs-converter': converter.version_converter,
  'tfjs-data': data.version_data, 'tfjs-backend-webgl': webgl.version_webgl });
module.exports = union;
