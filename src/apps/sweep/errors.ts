/** A sweep that ran every point it could, but some failed: exit 1, the last line counting them. */
export class SweepFailedError extends Error {
  override name = 'SweepFailedError';
}

/** The Redis a sweep follows its points on went away: exit 1 within seconds, never a hang. */
export class QueueLostError extends Error {
  override name = 'QueueLostError';
}
