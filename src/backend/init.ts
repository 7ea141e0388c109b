import * as tf from '@tensorflow/tfjs';
import { registerMatMulGradient } from './matmul-grad.js';

export type BackendName = 'wasm' | 'cpu' | 'tensorflow';

/** A compute backend that was asked for and cannot be started. */
export class BackendError extends Error {
  override name = 'BackendError';
}

let active: BackendName | undefined;

/**
 * Starts a tfjs backend once per thread: `wasm` (XNNPACK with SIMD, the default), `cpu` (plain JS),
 * or `tensorflow` (libtensorflow via @tensorflow/tfjs-node-gpu, used only when installed).
 */
export async function initBackend(name: BackendName): Promise<void> {
  if (active === name) return;
  if (active !== undefined) throw new BackendError(`backend already initialised as ${active} in this thread (asked for ${name})`);
  tf.env().set('PROD', true);
  tf.env().set('IS_TEST', false);
  if (name === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
  } else if (name === 'tensorflow') {
    try {
      const pkg = '@tensorflow/tfjs-node-gpu';
      await import(pkg);
    } catch (e) {
      throw new BackendError(
        `parallel.backend tensorflow needs the optional package @tensorflow/tfjs-node-gpu, which is not installed ` +
          `(${(e as Error).message.split('\n')[0]}); install it with \`npm install @tensorflow/tfjs-node-gpu\` on a machine that can download libtensorflow, or use parallel.backend=wasm`,
      );
    }
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendError(`backend ${name} failed to initialise`);
  await tf.ready();
  registerMatMulGradient();
  active = name;
}
