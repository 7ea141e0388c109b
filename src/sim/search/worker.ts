import { parentPort } from 'node:worker_threads';
import type { Cluster } from '../cluster.js';
import type { Workload } from '../workload.js';
import type { Plan } from './context.js';
import { projectPlan } from './project-plan.js';

/**
 * A search thread: given the cluster and the workload once (`init`), it projects each chunk of plans it is sent
 * and answers with their results in the chunk's order.
 */
export type ToWorker = { kind: 'init'; cluster: Cluster; workload: Workload } | { kind: 'chunk'; start: number; plans: Plan[] };
export type FromWorker = { kind: 'ready' } | { kind: 'chunk'; start: number; results: ReturnType<typeof projectPlan>[] }
  | { kind: 'error'; message: string };

let cluster: Cluster | undefined;
let workload: Workload | undefined;

parentPort?.on('message', (m: ToWorker) => {
  try {
    if (m.kind === 'init') {
      ({ cluster, workload } = m);
      parentPort!.postMessage({ kind: 'ready' } satisfies FromWorker);
      return;
    }
    const results = m.plans.map((p) => projectPlan(cluster!, workload!, p));
    parentPort!.postMessage({ kind: 'chunk', start: m.start, results } satisfies FromWorker);
  } catch (e) {
    parentPort!.postMessage({ kind: 'error', message: (e as Error).stack ?? String(e) } satisfies FromWorker);
  }
});
