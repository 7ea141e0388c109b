import { rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError } from '../core/config/errors.js';
import { readJson } from '../core/util/fs.js';

/** DIR/run.lock: the process training the run in DIR, while it does. */
const LOCK = 'run.lock';

interface LockOwner {
  pid: number;
  host: string;
}

/** Whether process `pid` of this machine is still running (a lock left by a killed run is not held). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // running, under another user
  }
}

/** the locks this process holds (a lock naming this process that is not among them was left by an earlier one) */
const held = new Set<string>();

/**
 * One training process per run directory on a machine: two runs started into the same --out at the same
 * moment, or two --resume of one run, would otherwise interleave their metrics and checkpoints. The lock
 * is a file created exclusively (O_EXCL), naming its process and machine. One left behind by a process
 * that no longer runs is taken over: on this machine, by the process id; a lock from another machine
 * (a shared disk) is taken over too, since it cannot be checked and the sweep queue, which hands a dead
 * worker's point to another machine, already decides who runs a point there. Two processes taking over
 * the same stale lock at the same instant are not told apart.
 */
export class RunLock {
  private constructor(private readonly file: string) {}

  /** Takes DIR's lock, or throws a ConfigError (exit 2) naming the process that holds it. */
  static take(dir: string): RunLock {
    const file = resolve(dir, LOCK);
    const me: LockOwner = { pid: process.pid, host: hostname() };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx' });
        held.add(file);
        return new RunLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = readOwner(file);
      // the owner still runs: this process holding it, or another live process of this machine
      const running = owner?.pid === process.pid ? held.has(file) : owner !== undefined && alive(owner.pid);
      const inUse = owner === undefined || (owner.host === me.host && running);
      if (inUse) {
        const who = owner ? `process ${owner.pid} on ${owner.host}` : 'another process';
        throw new ConfigError(`run directory ${dir} is in use by ${who} (${LOCK}): one run trains in a directory `
          + `at a time; wait for it or choose another --out (if no run is using it, delete ${file})`);
      }
      rmSync(file, { force: true }); // left by a run that is gone: take it over
    }
    throw new ConfigError(`run directory ${dir}: could not take ${LOCK} (another run keeps taking it)`);
  }

  /** Gives the directory back (at the end of the run, whatever the way it ended). */
  release(): void {
    held.delete(this.file);
    rmSync(this.file, { force: true });
  }
}

/** the lock's owner; undefined while it is being written, or when unreadable (then it counts as held) */
function readOwner(file: string): LockOwner | undefined {
  const o = readJson<Partial<LockOwner>, undefined>(file, () => undefined);
  return typeof o?.pid === 'number' && typeof o.host === 'string' ? { pid: o.pid, host: o.host } : undefined;
}
