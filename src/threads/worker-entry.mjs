// The one entry point of every device thread, in plain JavaScript: worker threads do not inherit the
// parent's TypeScript loader on Node 20, so register tsx here, then load the TypeScript handler the
// pool names (piscina's `name`): `device` for an expert device of the coordinator layout, `replica`
// for an spmd device. Each thread loads only its own.
import { register } from 'tsx/esm/api';

register();
let deviceHandler;
let replicaHandler;

export async function device(request) {
  deviceHandler ??= (await import('../experts/worker.ts')).default;
  return deviceHandler(request);
}

export async function replica(request) {
  replicaHandler ??= (await import('../spmd/worker.ts')).default;
  return replicaHandler(request);
}
