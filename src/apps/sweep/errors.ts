import { ConfigError } from '../../core/config/errors.js';

/** A sweep that ran every point it could, but some failed: exit 1, the last line counting them. */
export class SweepFailedError extends Error {
  override name = 'SweepFailedError';
}

/** The Redis a sweep follows its points on went away: exit 1 within seconds, never a hang. */
export class QueueLostError extends Error {
  override name = 'QueueLostError';
}

/** A worker's poll failed for another reason than a lost Redis (a reply error, a bug): the worker stops, exit 1. */
export class WorkerFailedError extends Error {
  override name = 'WorkerFailedError';
}

/**
 * A sweep directory that cannot be read as one (bad input, exit 2): missing, without sweep.yaml, or
 * with a sweep.yaml, results.jsonl or metrics.jsonl that is not what a sweep writes.
 */
export class SweepDirError extends ConfigError {
  override name = 'SweepDirError';
}
