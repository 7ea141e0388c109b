import test from 'ava';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { queueName } from '../src/apps/sweep/queue.js';
import { runWorker } from '../src/apps/sweep/worker.js';
import { tempDir } from './helpers.js';
import { startRedis } from './redis.js';

/** Clients connected to the Redis, as it counts them. */
const clients = async (conn: Redis) => ((await conn.client('LIST')) as string).trim().split('\n').length;

// 28 polls of idling, 4 a second: this file runs beside the others (it computes nothing)
test('an idle worker over 28 polls: the same abort listeners and Redis connections every poll, none held for finished queues', async (t) => {
  const redis = await startRedis();
  const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queues = ['x', 'y', 'z'].map((n) => new Queue(queueName(`idle-${n}`), { connection: conn }));
  for (const q of queues) await (await q.add('p', {}, { jobId: 'p' })).remove(); // three sweep queues, finished: nothing left in them
  t.is((await conn.keys('bull:switch-sim.idle-*:meta')).length, 3, 'the worker can see them');
  const abort = new AbortController();
  const worker = runWorker({ url: redis.url, runsDir: join(tempDir(t), 'runs'), signal: abort.signal, pollMs: 250, log: () => {} });
  try {
    const look = async () => ({ listeners: getEventListeners(abort.signal, 'abort').length, connections: await clients(conn) });
    await new Promise((r) => setTimeout(r, 500)); // past its first polls: the idle state
    const start = await look();
    for (let s = 0; s < 28; s++) {
      await new Promise((r) => setTimeout(r, 250));
      const now = await look();
      t.deepEqual(now, start, `after poll ${s + 3}`);
    }
    t.is(start.listeners, 1, 'one abort listener for the whole run');
    t.is(start.connections, 2, 'the worker\'s one connection and this test\'s');
  } finally {
    abort.abort();
    await worker;
    for (const q of queues) await q.close();
    conn.disconnect();
    await redis.stop();
  }
});
