// The spmd device worker's entry point, in plain JavaScript: worker threads do not inherit the
// parent's TypeScript loader on Node 20, so register tsx here, then load the TypeScript handler.
import { register } from 'tsx/esm/api';

register();
const { default: handle } = await import('./worker.ts');
export default handle;
