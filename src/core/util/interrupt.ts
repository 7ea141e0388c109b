/** What Ctrl-C does in a long-running command: the first stops it gracefully, the second at once. */
export interface CtrlC {
  /** what the first Ctrl-C does, for the line it prints: "finishing this step and saving a checkpoint" */
  first: string;
  /** what quitting at once means, when it needs saying ("the point goes back to the queue") */
  second?: string;
  /** the first Ctrl-C: ask the work to stop at its next safe point */
  onFirst: () => void;
  /** the second, just before the process ends (e.g. pass the signal on to child processes) */
  onSecond?: () => void;
}

/**
 * Installs the two-stage Ctrl-C handler for one command: the first SIGINT prints one line saying what
 * happens and calls onFirst; the second calls onSecond, removes the handler and raises SIGINT again,
 * so that the process ends at once as an unhandled Ctrl-C ends it (exit status 130 in a shell). Returns
 * the function that removes the handler (call it when the command ends).
 */
export function onCtrlC(h: CtrlC): () => void {
  let seen = 0;
  const handler = () => {
    seen++;
    if (seen === 1) {
      process.stderr.write(`\nCtrl-C: ${h.first} (Ctrl-C again to quit now${h.second ? `: ${h.second}` : ''})\n`);
      h.onFirst();
      return;
    }
    h.onSecond?.();
    process.off('SIGINT', handler);
    process.kill(process.pid, 'SIGINT');
  };
  process.on('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}
