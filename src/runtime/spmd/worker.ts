/**
 * An spmd device's worker thread (one single-thread piscina pool per device): it runs a Replica.
 */
import tf from '../../core/util/tfjs.cjs';
import { initBackend, releaseBackend, type BackendName } from '../../core/backend/init.js';
import { Replica } from './replica.js';
import { threadMemory } from '../devices/device-host.js';
import type { ReplicaRequest } from './messages.js';

let replica: Replica | undefined;

function ready(): Replica {
  if (!replica) throw new Error('spmd device used before init');
  return replica;
}

export default async function handle(req: ReplicaRequest): Promise<unknown> {
  switch (req.kind) {
    case 'init':
      // the dense model runs on coordinator_backend; experts on the same tfjs backend, or as gpu.js kernels
      await initBackend(req.config.parallel.coordinator_backend as BackendName);
      replica?.dispose();
      replica = await Replica.open(req);
      return { backend: tf.getBackend() };
    case 'train':
      return ready().trainStep(req);
    case 'step':
      return ready().step(req.lr, req.t);
    case 'eval':
      return ready().evaluate(req.x, req.y, req.batch, req.step);
    case 'state':
      return ready().state(req.dense);
    case 'load':
      await ready().load(req.dense, req.experts);
      return null;
    case 'digest':
      return ready().digest();
    case 'memory':
      return threadMemory(replica?.host);
    case 'close':
      replica?.dispose();
      replica = undefined;
      await releaseBackend();
      return null;
    default:
      throw new Error(`unknown spmd request ${(req as { kind: string }).kind}`);
  }
}
