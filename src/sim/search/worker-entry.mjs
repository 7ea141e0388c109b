// A search thread's entry: worker threads do not inherit the parent's TypeScript loader on Node 20, so register
// tsx here, then run the thread (worker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
