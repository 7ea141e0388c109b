import type { Command } from 'commander';
import { number } from '../args.js';

/** `switch-sim worker`: run sweep points from a Redis queue, on this machine. */
export function register(program: Command): void {
  program
    .command('worker')
    .description('take sweep points from every sweep queue on a Redis, train them here, and return their results')
    .requiredOption('--queue <url>', 'redis://HOST:PORT[/DB], the Redis the sweep enqueued its points on')
    .option('--concurrency <n>', 'points at once in all, over every sweep queue (each a child process)',
      number('--concurrency', 1, true), 1)
    .option('--runs-dir <dir>', 'where points run and keep checkpoints (share it between workers to resume ' +
      'handed-over points)', 'runs/worker')
    .option('--lock-ms <n>', 'a job lock: a worker that died is noticed after about this long',
      number('--lock-ms', 1000, true), 10_000)
    .action(async (o: { queue: string; concurrency: number; runsDir: string; lockMs: number }) => {
      const { interruptPoints, runWorker } = await import('../../apps/sweep/worker.js');
      const { onCtrlC } = await import('../../core/util/interrupt.js');
      const abort = new AbortController();
      const offCtrlC = onCtrlC({
        first: 'finishing the running points, taking no new one', second: 'the point goes back to the queue',
        onFirst: () => abort.abort(), onSecond: interruptPoints,
      });
      try {
        await runWorker({ url: o.queue, concurrency: o.concurrency, runsDir: o.runsDir, lockMs: o.lockMs,
          signal: abort.signal, log: (l) => console.log(l) });
      } finally {
        offCtrlC();
      }
    });
}
