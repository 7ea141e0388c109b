/** A compute backend that was asked for and cannot be started: the message says why and what to install. */
export class BackendError extends Error {
  override name = 'BackendError';
}
