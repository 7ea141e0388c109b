import { rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
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

/**
 * One training process per run directory: two runs started into the same --out at the same moment, or
 * two --resume of one run, would otherwise interleave their metrics and checkpoints. The lock is a file
 * created exclusively (O_EXCL), naming its process and machine; one left behind by a process that no
 * longer runs on this machine is taken over. One from another machine (a shared disk) cannot be checked,
 * and is honoured until removed by hand.
 */
export class RunLock {
  private constructor(private readonly file: string) {}

  /** Takes DIR's lock, or throws a ConfigError (exit 2) naming the process that holds it. */
  static take(dir: string): RunLock {
    const file = join(dir, LOCK);
    const me: LockOwner = { pid: process.pid, host: hostname() };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx' });
        return new RunLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = readOwner(file);
      const held = owner === undefined || owner.host !== me.host || alive(owner.pid);
      if (held) {
        const who = owner ? `process ${owner.pid} on ${owner.host}` : 'another process';
        throw new ConfigError(`run directory ${dir} is in use by ${who} (${LOCK}): one run trains in a directory `
          + `at a time; wait for it or choose another --out (if no run is using it, delete ${file})`);
      }
      rmSync(file, { force: true }); // left by a run that was killed: take it over
    }
    throw new ConfigError(`run directory ${dir}: could not take ${LOCK} (another run keeps taking it)`);
  }

  /** Gives the directory back (at the end of the run, whatever the way it ended). */
  release(): void {
    rmSync(this.file, { force: true });
  }
}

/** the lock's owner; undefined while it is being written, or when unreadable (then it counts as held) */
function readOwner(file: string): LockOwner | undefined {
  const o = readJson<Partial<LockOwner>, undefined>(file, () => undefined);
  return typeof o?.pid === 'number' && typeof o.host === 'string' ? { pid: o.pid, host: o.host } : undefined;
}
