/** A checkpoint that cannot be used: missing, corrupt, malformed, or made for another model. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** Training was interrupted (Ctrl-C) after saving a checkpoint. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}
