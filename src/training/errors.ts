/** Training was interrupted (Ctrl-C) after saving a checkpoint. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}
