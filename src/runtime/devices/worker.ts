/**
 * A device's worker thread (one single-thread piscina pool per device). It owns a DeviceHost: the
 * experts' weights, gradients and AdamW state live here, on this thread's compute backend.
 */
import tf from '../../core/util/tfjs.cjs';
import { Piscina } from 'piscina';
import { initBackend, releaseBackend, type BackendName } from '../../core/backend/init.js';
import { DeviceHost, threadMemory } from './device-host.js';
import { absoluteNow } from '../../core/instrument/recorder.js';
import type { ComputeReport, DeviceRequest } from './messages.js';

let host: DeviceHost | undefined;

function ready(): DeviceHost {
  if (!host) throw new Error('device used before init');
  return host;
}

/** Returns a compute report, moving its payload (if any) back instead of copying it. */
function reply(r: ComputeReport, transfer: boolean): unknown {
  if (!r.payload || !transfer) return r;
  const buffer = r.payload.buffer;
  // a Transferable wrapper: piscina sends `value` with `buffer` in the transfer list
  const movable = { [Piscina.transferableSymbol]: buffer, [Piscina.valueSymbol]: r };
  return Piscina.move(movable as unknown as ArrayBuffer);
}

export default async function handle(req: DeviceRequest & { transfer?: boolean }): Promise<unknown> {
  switch (req.kind) {
    case 'init':
      // gpujs runs the experts' kernels itself (tfjs stays on wasm); 'auto' is resolved before the devices start
      await initBackend((req.config.parallel.backend === 'gpujs' ? 'wasm'
        : req.config.parallel.backend) as BackendName);
      host?.dispose();
      host = await DeviceHost.open(req.config, req.device, req.switchBlocks, req.buffers);
      return { experts: host.experts, backend: tf.getBackend(), simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')
        .catch(() => false) };
    case 'forward':
      return reply(await ready().forward(req), req.transfer === true);
    case 'backward':
      return reply(await ready().backward(req), req.transfer === true);
    case 'touch':
      return reply(ready().touch(req), req.transfer === true);
    case 'grad_norm':
      return ready().gradSquaredNorm();
    case 'clock':
      return absoluteNow();
    case 'memory':
      return threadMemory(host);
    case 'close':
      host?.dispose();
      host = undefined;
      await releaseBackend();
      return null;
    case 'step':
      return ready().step(req.lr, req.clipScale, req.t);
    case 'state':
      return ready().state();
    case 'load':
      await ready().load(req.state);
      return null;
    case 'fault':
      if (req.fault === 'crash') process.exit(70); // in a worker thread this ends the thread only
      if (req.fault === 'hang') return new Promise(() => {}); // never answers
      throw new Error('injected fault: handler threw');
    default:
      throw new Error(`unknown device request ${(req as { kind: string }).kind}`);
  }
}
