import { Worker } from 'node:worker_threads';
import type { Cluster } from '../cluster.js';
import type { Workload } from '../workload.js';
import type { Plan } from './context.js';
import { projectPlan } from './project-plan.js';
import type { FromWorker, ToWorker } from './worker.js';

/** Plans a thread is sent at a time: neighbours in the search's order share their exchange (traffic.ts's cache). */
const CHUNK = 64;

/**
 * Every plan projected, result i for plan i whatever the thread count: with `threads` > 1, worker threads take
 * chunks of the list in turn (the next to whichever answers first) and each result lands at its plan's index.
 */
export async function projectAll(cluster: Cluster, w: Workload, plans: Plan[], threads: number,
  progress?: (done: number) => void): Promise<ReturnType<typeof projectPlan>[]> {
  const out = new Array<ReturnType<typeof projectPlan>>(plans.length);
  if (threads <= 1 || plans.length <= CHUNK) {
    plans.forEach((p, i) => {
      out[i] = projectPlan(cluster, w, p);
      if ((i + 1) % CHUNK === 0) progress?.(i + 1);
    });
    return out;
  }
  let next = 0;
  let done = 0;
  const workers = Array.from({ length: Math.min(threads, Math.ceil(plans.length / CHUNK)) },
    () => new Worker(new URL('./worker-entry.mjs', import.meta.url), { execArgv: [] }));
  try {
    await Promise.all(workers.map((worker) => new Promise<void>((resolve, reject) => {
      const send = () => {
        if (next >= plans.length) {
          resolve();
          return;
        }
        const start = next;
        next += CHUNK;
        worker.postMessage({ kind: 'chunk', start, plans: plans.slice(start, start + CHUNK) } satisfies ToWorker);
      };
      worker.on('message', (m: FromWorker) => {
        if (m.kind === 'error') reject(new Error(`a search thread failed: ${m.message}`));
        else if (m.kind === 'ready') send();
        else {
          m.results.forEach((r, i) => (out[m.start + i] = r));
          done += m.results.length;
          progress?.(done);
          send();
        }
      });
      worker.on('error', reject);
      worker.on('exit', (code) => code !== 0 && reject(new Error(`a search thread exited with code ${code}`)));
      worker.postMessage({ kind: 'init', cluster, workload: w } satisfies ToWorker);
    })));
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
  return out;
}
