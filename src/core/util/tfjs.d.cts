// tfjs's own types. At run time tfjs.cjs leaves out what @tensorflow/tfjs only re-exports from tfjs-layers,
// tfjs-converter, tfjs-data and tfjs-backend-webgl (tf.layers, tf.sequential, tf.data, tf.loadGraphModel, …):
// require tfjs-full.cjs before using any of it.
import * as tf from '@tensorflow/tfjs';
export = tf;
