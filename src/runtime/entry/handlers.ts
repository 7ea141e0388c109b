/**
 * What every device thread runs, by piscina's `name`: `device` for an expert device of the coordinator
 * layout, `replica` for an spmd device. Each thread loads only the handler it is asked for.
 */
import type { DeviceRequest } from '../devices/messages.js';
import type { ReplicaRequest } from '../spmd/messages.js';

type Handler<R> = (request: R) => Promise<unknown>;
let deviceHandler: Handler<DeviceRequest> | undefined;
let replicaHandler: Handler<ReplicaRequest> | undefined;

export async function device(request: DeviceRequest): Promise<unknown> {
  deviceHandler ??= (await import('../devices/worker.js')).default;
  return deviceHandler(request);
}

export async function replica(request: ReplicaRequest): Promise<unknown> {
  replicaHandler ??= (await import('../spmd/worker.js')).default;
  return replicaHandler(request);
}
