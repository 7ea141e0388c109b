import { existsSync, readdirSync } from 'node:fs';
import { BackendError } from './errors.js';

/**
 * WebGPU in Node through Dawn (the `webgpu` package). On a machine with a GPU, Dawn's Vulkan backend;
 * without one, Mesa's software rasteriser behind Dawn's OpenGL backend, which needs EGL without a
 * display (EGL_PLATFORM=surfaceless) and an adapter of `featureLevel: 'compatibility'`.
 */
export interface Dawn {
  /** navigator.gpu as tfjs and gpu.js expect it: adapters requested through it get the right feature level */
  gpu: GPU;
  adapter: string;
  backend: 'vulkan' | 'opengl';
}

export const MESA_HINT = 'apt-get install -y libegl1 libegl-mesa0 libgles2 mesa-vulkan-drivers';

/** A GPU the kernel exposes (NVIDIA, or a DRM render node). */
function hasGpuDevice(): boolean {
  if (existsSync('/dev/nvidia0')) return true;
  try {
    return readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  } catch {
    return false;
  }
}

/**
 * Must run in the main thread before device threads start: a worker's process.env is its own copy,
 * and libEGL reads the real environment.
 */
export function prepareDawnEnvironment(): void {
  process.env.EGL_PLATFORM ??= 'surfaceless';
}

let opened: Promise<Dawn> | undefined;

/** Opens Dawn once per thread and finds an adapter, or throws BackendError saying why not. */
export function openDawn(): Promise<Dawn> {
  opened ??= open();
  return opened;
}

async function open(): Promise<Dawn> {
  prepareDawnEnvironment();
  let webgpu: typeof import('webgpu');
  try {
    webgpu = await import('webgpu');
  } catch (e) {
    throw new BackendError(`parallel.backend webgpu: the webgpu package (Dawn) does not load here ` +
      `(${(e as Error).message.split('\n')[0]})`);
  }
  Object.assign(globalThis, webgpu.globals);
  const tries: [Dawn['backend'], 'core' | 'compatibility'][] = hasGpuDevice() ? [['vulkan', 'core'], [
    'opengl', 'compatibility',
  ]] : [['opengl', 'compatibility']];
  for (const [backend, featureLevel] of tries) {
    const gpu = webgpu.create([`backend=${backend}`]) as GPU;
    const adapter = await gpu.requestAdapter({ featureLevel } as GPURequestAdapterOptions).catch(() => null);
    if (!adapter) continue;
    const wrapped = {
      requestAdapter: (o?: GPURequestAdapterOptions) => gpu.requestAdapter({
        ...(o ?? {}), featureLevel,
      } as GPURequestAdapterOptions),
      getPreferredCanvasFormat: () => 'rgba8unorm' as const,
      wgslLanguageFeatures: gpu.wgslLanguageFeatures,
    } as unknown as GPU;
    const info = adapter.info;
    return {
      gpu: wrapped, adapter: info.description || `${info.vendor} ${info.architecture}`.trim() || backend, backend,
    };
  }
  throw new BackendError(`parallel.backend webgpu: no WebGPU adapter (tried ${tries.map(([b]) => b).join(', ')} ` +
    `through Dawn); without a GPU, install Mesa: ${MESA_HINT}`);
}
