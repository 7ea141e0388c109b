import { createRequire } from 'node:module';
import tf from '../util/tfjs.cjs';
import { registerMatMulGradient } from './matmul-grad.js';
import { openDawn } from './dawn.js';
import { BackendError } from './errors.js';

export type BackendName = 'wasm' | 'cpu' | 'webgpu' | 'tensorflow';
export { BackendError };

let active: BackendName | undefined;

/**
 * The tfjs backends are CommonJS: loaded with require, not import(), which would first have Node scan them
 * (and tfjs-core, which they re-export) for the names they export: 84 ms against 12 for the wasm backend, in
 * every process and every device thread (the same reason as ../util/tfjs.cjs).
 */
const require = createRequire(import.meta.url);

/**
 * The tfjs release whose internals switch-sim reads (the tape in tape.ts, the wasm heap in view.ts,
 * the BatchMatMul gradient): package.json pins it exactly, and start-up refuses any other.
 */
export const TFJS_VERSION = '4.22.0';

/** Throws BackendError unless tfjs-core (and the wasm backend, when loaded) are the pinned release. */
export function checkTfjsVersions(versions: { core: string; wasm?: string }): void {
  for (const [pkg, got] of [['@tensorflow/tfjs-core', versions.core], [
    '@tensorflow/tfjs-backend-wasm', versions.wasm,
  ]] as const) {
    if (got !== undefined && got !== TFJS_VERSION) {
      throw new BackendError(`${pkg} must be version ${TFJS_VERSION}, which switch-sim's kernels and tape are ` +
        `written against (got ${got}); run npm ci to restore the pinned versions`);
    }
  }
}

/**
 * Starts a tfjs backend once per thread: `wasm` (XNNPACK with SIMD, the default), `cpu` (plain JS),
 * or `tensorflow` (libtensorflow via @tensorflow/tfjs-node-gpu, used only when installed).
 */
export async function initBackend(name: BackendName): Promise<void> {
  if (active === name) return;
  if (active !== undefined) throw new BackendError(`backend already initialised as ${active} in this thread (asked ` +
    `for ${name})`);
  tf.env().set('PROD', true);
  tf.env().set('IS_TEST', false);
  checkTfjsVersions({ core: tf.version_core });
  if (name === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    checkTfjsVersions({ core: tf.version_core, wasm: wasm.version_wasm });
  } else if (name === 'webgpu') {
    const dawn = await openDawn();
    (globalThis as { navigator?: unknown }).navigator = { gpu: dawn.gpu }; // tfjs-webgpu finds its adapter here
    require('@tensorflow/tfjs-backend-webgpu');
  } else if (name === 'tensorflow') {
    // libtensorflow through tfjs-node-gpu (CUDA) or tfjs-node (CPU), whichever the user installed; they extend
    // parts of @tensorflow/tfjs that tfjs.cjs leaves out, so the whole union first (tfjs-full.cjs)
    require('../util/tfjs-full.cjs');
    const loaded = await import('@tensorflow/tfjs-node-gpu' as string).catch(() => import('@tensorflow/tfjs-node' as string)).catch((e: Error) => e);
    if (loaded instanceof Error) {
      throw new BackendError(
        `parallel.backend tensorflow needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither is ` +
          `installed; ` +
          `install one with \`npm install @tensorflow/tfjs-node-gpu\` (or tfjs-node) on a machine that can download ` +
            `libtensorflow, or use parallel.backend=wasm`,
      );
    }
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendError(`backend ${name} failed to initialise`);
  await tf.ready();
  registerMatMulGradient();
  active = name;
}

/** Frees a GPU backend before its thread ends (Dawn crashes if a live device outlives its thread). */
export async function releaseBackend(): Promise<void> {
  if (active !== 'webgpu') return;
  const b = tf.backend() as unknown as { device?: { queue: { onSubmittedWorkDone(): Promise<void> }; destroy(): void }; dispose(): void };
  await b.device?.queue.onSubmittedWorkDone();
  b.dispose();
  b.device?.destroy();
}
