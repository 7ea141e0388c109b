import tf from '../util/tfjs.cjs';

interface WasmBackendInternals {
  dataIdMap?: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm?: { HEAPU8: Uint8Array };
}

/**
 * A float32 tensor's values without a copy: on the wasm backend, a view of its bytes in the backend's
 * heap; elsewhere, dataSync(). `dataSync` allocates a fresh array per call, and on the hot path those
 * allocations (~65 MB a step) drive V8's garbage collector, whose helper threads then compete with the
 * device threads for the cores.
 * The view is valid only until the next tfjs operation (which may grow and move the heap): read it at once.
 */
export function readView(t: tf.Tensor): Float32Array {
  const b = tf.backend() as unknown as WasmBackendInternals;
  if (t.dtype === 'float32' && b.wasm && b.dataIdMap) {
    const entry = b.dataIdMap.get(t.dataId);
    if (entry) return new Float32Array(b.wasm.HEAPU8.buffer, entry.memoryOffset, t.size);
  }
  return t.dataSync() as Float32Array;
}

/**
 * A tensor holding a copy of `values`, which may be a view that is about to change (a kernel's
 * scratch memory). The wasm backend copies on creation; others may keep the array, so copy first.
 */
export function tensorFrom(values: Float32Array, shape: number[]): tf.Tensor {
  const b = tf.backend() as unknown as WasmBackendInternals;
  return tf.tensor(b.wasm && b.dataIdMap ? values : values.slice(), shape, 'float32');
}

/**
 * Whether tensors live in this thread's memory (wasm, cpu): the JavaScript kernels over views apply;
 * elsewhere (a GPU) tfjs ops do.
 */
export function onHost(): boolean {
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu';
}
