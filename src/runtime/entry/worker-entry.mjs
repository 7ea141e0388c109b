// The device threads' entry when their bundle (worker-file.ts) cannot be written: worker threads do
// not inherit the parent's TypeScript loader on Node 20, so register tsx here, then load the handlers.
import { register } from 'tsx/esm/api';

register();
const handlers = import('./handlers.ts');

export async function device(request) {
  return (await handlers).device(request);
}

export async function replica(request) {
  return (await handlers).replica(request);
}
