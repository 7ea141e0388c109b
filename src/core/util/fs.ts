import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Why `path` cannot be (or become) a directory, or undefined where it can: it is empty, or it or one of
 * its ancestors is a file. Checked before any work, so that a bad output path is bad input, not a late crash.
 */
export function directoryPathProblem(path: string): string | undefined {
  if (path === '') return 'is empty';
  const full = resolve(path);
  let p = full;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  if (!existsSync(p) || statSync(p).isDirectory()) return undefined;
  return p === full ? 'is a file' : `is under the file ${JSON.stringify(p)}`;
}

/** Flushes a file, or a directory's entries (a rename or a new file in it), to disk. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file and flushes it to disk before returning. */
export function writeFileDurable(file: string, data: string | Uint8Array): void {
  writeFileSync(file, data);
  fsyncPath(file);
}

/**
 * Replaces `file` whole or not at all: the data goes to a temporary file beside it (named for this
 * process, so that two processes never share one), which is then renamed over it. A reader sees the old
 * contents or the new, never part of either. `durable` also flushes the file and its directory, so that
 * a crash of the machine right after still finds the new contents.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: { durable?: boolean } = {}): void {
  const tmp = `${file}.tmp-${process.pid}`;
  if (opts.durable) writeFileDurable(tmp, data);
  else writeFileSync(tmp, data);
  renameSync(tmp, file);
  if (opts.durable) fsyncPath(dirname(file));
}

/**
 * Puts the finished (and flushed) directory `from` in place as `to` in one rename, replacing whatever
 * is at `to` (an unfinished earlier attempt), and flushes the parent directory.
 */
export function moveDirIntoPlace(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  renameSync(from, to);
  fsyncPath(dirname(to));
}

/** Why a JSON file could not be read: it is not there, or it could not be read or parsed (`reason`, one line). */
export interface JsonProblem {
  file: string;
  missing: boolean;
  reason: string;
}

/** The default for a JSON file that cannot be read: an error naming the file and what is wrong with it. */
export const refuseJson = (p: JsonProblem): never => {
  throw new Error(`${p.file} ${p.missing ? 'does not exist' : `is not readable JSON (${p.reason})`}`);
};

/** A problem handler: a missing file gives `value`; an unreadable or malformed one is refused (refuseJson). */
export const missingAs = <T>(value: T) => (p: JsonProblem): T => (p.missing ? value : refuseJson(p));

/**
 * The parsed contents of a JSON file. A file that is missing, unreadable or not JSON goes to
 * `onProblem`, which throws the caller's own error or returns what stands in for the contents. The
 * contents are the caller's to check (typed `any` unless the caller says, as JSON.parse's are).
 */
export function readJson<T = any, Else = never>(file: string | URL,
  onProblem: (p: JsonProblem) => Else = refuseJson): T | Else {
  const name = file instanceof URL ? file.pathname : file;
  if (!existsSync(file)) return onProblem({ file: name, missing: true, reason: 'no such file' });
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    return onProblem({ file: name, missing: false, reason: (e as Error).message.split('\n')[0]! });
  }
}
