import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import YAML from 'yaml';
import { queueName } from '../src/apps/sweep/queue.js';
import { runRemoteSweep } from '../src/apps/sweep/remote.js';
import { runWorker } from '../src/apps/sweep/worker.js';
import { cli, CORPUS, tempDir } from './helpers.js';
import { startRedis } from './redis.js';

/** A log that resolves a promise on the first line matching a pattern. */
function watchedLog() {
  const lines: string[] = [];
  const waiting: { re: RegExp; resolve: (line: string) => void }[] = [];
  return {
    lines,
    log: (line: string) => {
      lines.push(line);
      for (const w of waiting.filter((x) => x.re.test(line))) (waiting.splice(waiting.indexOf(w), 1), w.resolve(line));
    },
    next: (re: RegExp) => new Promise<string>((resolve) => waiting.push({ re, resolve })),
  };
}

test.serial('a poll that fails for another reason than a lost Redis ends the worker: exit 1 with the error, one line', async (t) => {
  t.timeout(30_000, 'the worker retried the failing poll instead of stopping');
  const redis = await startRedis();
  const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  try {
    // a sweep queue whose active list is a string: every count of its jobs is a WRONGTYPE reply, whatever the retries
    const queue = new Queue(queueName('poisoned'), { connection: conn });
    await (await queue.add('p', {}, { jobId: 'p' })).remove();
    await queue.close();
    await conn.set('bull:switch-sim.poisoned:active', 'not a list');
    const r = await cli('worker', '--queue', redis.url, '--runs-dir', join(tempDir(t), 'runs'));
    t.is(r.status, 1);
    const lines = r.stderr.trim().split('\n').filter((l) => l.trim() && !/^Warning:/.test(l));
    t.is(lines.length, 1, r.stderr);
    t.regex(lines[0]!, new RegExp(`^error: worker .* on ${redis.url}: .*WRONGTYPE`));
  } finally {
    conn.disconnect();
    await redis.stop();
  }
});

test.serial('a lost Redis is said once with its URL and waited for; once it is back the worker takes points again', async (t) => {
  t.timeout(90_000);
  const dir = tempDir(t);
  const redis = await startRedis();
  const port = Number(new URL(redis.url).port);
  const seen = watchedLog();
  const abort = new AbortController();
  // the worker's first connection (a probe, then its connection) must be made before its Redis goes away
  const started = seen.next(/^worker /);
  const worker = runWorker({ url: redis.url, runsDir: join(dir, 'runs'), signal: abort.signal, pollMs: 100, lockMs: 2000, log: seen.log });
  let back: Awaited<ReturnType<typeof startRedis>> | undefined;
  try {
    await Promise.race([started, worker]);
    const lost = seen.next(/lost the Redis/);
    await redis.stop();
    t.regex(await lost, new RegExp(`^lost the Redis at ${redis.url} \\(.+\\); the running points go on, and the worker waits for it to come back$`));
    await new Promise((r) => setTimeout(r, 1500)); // the outage: a dozen polls and several reconnect attempts
    const returned = seen.next(/is back/);
    back = await startRedis(port);
    await returned;
    const file = join(dir, 'after.yaml');
    writeFileSync(file, YAML.stringify({
      base: {
        data: { dataset: CORPUS, seq_len: 16, batch_size: 4 }, model: { d_model: 16, n_heads: 2, n_layers: 2, d_ff: 32 },
        parallel: { transport: 'local', devices: 2 },
      },
      set: { 'train.steps': 2, 'train.eval_every': 0, 'train.eval_batches': 1, 'train.log_every': 1 },
    }));
    const r = await runRemoteSweep({ file, outDir: join(dir, 'out'), queue: back.url, pollMs: 100 });
    t.deepEqual(r.rows.map((x) => x.status), ['ok'], 'the same worker ran the point after the outage');
    t.is(seen.lines.filter((l) => /lost the Redis/.test(l)).length, 1, seen.lines.join(' | '));
    t.is(seen.lines.filter((l) => /is back/.test(l)).length, 1);
  } finally {
    abort.abort();
    await worker;
    await back?.stop();
    await redis.stop();
  }
});
