import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { ConfigError, show } from '../../core/config/errors.js';
import { allKeys } from '../../core/config/load.js';
import type { Config } from '../../core/config/defaults.js';
import { canonicalHash } from '../../core/config/hash.js';
import { readJson } from '../../core/util/fs.js';

/**
 * Sweeps across machines: every point a BullMQ job in a queue named after the sweep
 * (`switch-sim.<sweep>`), on one Redis that the sweep and every worker can reach.
 */
export const QUEUE_PREFIX = 'switch-sim.';
export const queueName = (sweep: string) => `${QUEUE_PREFIX}${sweep}`;

/** What a worker needs to run a point, and what it checks before it does. */
export interface PointJob {
  sweep: string;
  point: string;
  /** the point's identity: its resolved config (seed included) and profiled steps, hashed (pointKey) */
  key: string;
  seed: number;
  vary: Record<string, unknown>;
  config: Config;
  profileSteps: number | null;
  version: string;
  schema: string;
}

/** What a worker returns: small JSON, written back into the sweep's runs/<point>/ as a local point writes them. */
export interface PointResult {
  worker: string;
  summary: unknown;
  metrics: string;
  profile: unknown;
  resumed_from: number | null;
}

/**
 * A point's identity on the queue: its resolved config (the seed is in it) and what it records. The job
 * id is `<point>-<key>`, so a sweep rerun with another --set (or into another --out) is a new job,
 * never the old result; the same config is the same job, and its result is collected again.
 */
export const pointKey = (config: Config, profileSteps: number | null) => canonicalHash({ config, profileSteps });
export const jobId = (point: string, key: string) => `${point}-${key}`;

export const VERSION = readJson<{ version: string }>(new URL('../../../package.json', import.meta.url)).version;
/** the config schema's fingerprint: its key set (a worker with other keys cannot run the point as written) */
export const SCHEMA = createHash('sha256').update(allKeys().sort().join('\n')).digest('hex').slice(0, 16);

/** `redis://HOST:PORT[/DB]`, checked before anything connects. */
export function checkRedisUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`--queue must look like redis://HOST:PORT[/DB] (got ${show(url)})`);
  }
  const db = u.pathname.replace(/^\//, '');
  if (u.protocol !== 'redis:' || !u.hostname || !u.port || (db !== '' && !/^\d+$/.test(db))) {
    throw new ConfigError(`--queue must look like redis://HOST:PORT[/DB] (got ${show(url)})`);
  }
}

/**
 * A connection for BullMQ after one probe: an unreachable Redis is bad input (exit 2, one line naming
 * the URL), found within `timeoutMs`, never a hang on reconnects. `failFast` (the sweep's own
 * connection): while the Redis is away, calls fail at once instead of queueing, so that the sweep can
 * say so; workers keep BullMQ's blocking connections (their calls wait and retry).
 */
export async function connectRedis(url: string, opts: { timeoutMs?: number; failFast?: boolean } = {}): Promise<Redis> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  checkRedisUrl(url);
  const probe = new Redis(url, {
    lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: timeoutMs,
    enableOfflineQueue: false,
  });
  let last = '';
  probe.on('error', (e: Error) => (last = e.message));
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    throw new ConfigError(`--queue ${url} is unreachable (${last || (e as Error).message})`);
  } finally {
    probe.disconnect();
  }
  const conn = new Redis(url, opts.failFast
    ? { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (n: number) => Math.min(200 * n, 1000) }
    : { maxRetriesPerRequest: null });
  conn.on('error', () => {}); // failures surface through the calls
  if (opts.failFast && conn.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ConfigError(`--queue ${url} is unreachable (no answer within ${timeoutMs} ms)`)), timeoutMs,
      );
      conn.once('ready', () => (clearTimeout(timer), resolve()));
    }).catch((e) => (conn.disconnect(), Promise.reject(e)));
  }
  return conn;
}

/** Every sweep queue on the Redis (for workers that take jobs from all of them). */
export async function sweepQueues(conn: Redis): Promise<string[]> {
  const names = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await conn.scan(cursor, 'MATCH', `bull:${QUEUE_PREFIX}*:meta`, 'COUNT', 100);
    cursor = next;
    for (const k of keys) names.add(k.slice('bull:'.length, -':meta'.length));
  } while (cursor !== '0');
  return [...names].sort();
}

const CONNECTION_CODES = [
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
];

/**
 * Whether an error of a call on `conn` is the Redis going away (the connection down, or ioredis saying
 * so), which reconnecting mends, rather than a failure of the call itself (a reply error, a bug).
 */
export function isConnectionLoss(conn: Redis, e: unknown): boolean {
  if (conn.status !== 'ready') return true;
  const err = e as { code?: string; name?: string; message?: string } | undefined;
  if (err?.code && CONNECTION_CODES.includes(err.code)) return true;
  if (err?.name === 'MaxRetriesPerRequestError') return true;
  return /Connection is closed|Stream isn't writeable|Socket closed unexpectedly/.test(err?.message ?? '');
}
