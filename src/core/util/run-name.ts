import { join } from 'node:path';

/** The time as it appears in a directory name: 2024-05-01T12-30-05-123 (UTC, no characters a file system dislikes). */
export function timeStamp(date: Date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, '-').replace('Z', '');
}

/**
 * The default output directory of a command that was given none: runs/<name>-<time>, so that runs
 * started one after another never share a directory.
 */
export function timestampedRunDir(name: string, date: Date = new Date()): string {
  return join('runs', `${name}-${timeStamp(date)}`);
}
