import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface LocalRedis {
  url: string;
  stop(): Promise<void>;
}

/**
 * A real redis-server (Debian's package, installed by .ci/run) on 127.0.0.1 and a free port, with no
 * persistence, in a temporary folder; resolves once it answers PING. `at`: that port (a Redis started again where it was).
 */
export async function startRedis(at?: number): Promise<LocalRedis> {
  const port = at ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'switch-sim-redis-'));
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  let spawnError: Error | undefined;
  proc.on('error', (e) => (spawnError = e)); // not installed
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (e) {
      if (i >= 100 || proc.exitCode !== null || spawnError) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not start (${(spawnError ?? (e as Error)).message}); install it: apt-get install -y redis-server`);
      }
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      client.disconnect();
    }
  }
  return {
    url,
    stop: async () => {
      await new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve(); // stopped already
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
