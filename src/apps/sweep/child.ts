import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';

const BIN = new URL('../../../bin/switch-sim.js', import.meta.url).pathname;

/** How a point's command ended: its exit code and the last line it wrote to stderr (its error, if it failed). */
export interface ChildExit {
  code: number;
  lastError: string;
}

/** Every point command running in this process: each in a process group of its own. */
const running = new Set<ChildProcess>();

/**
 * Runs `switch-sim ARGS` for a sweep point, its output appended to `log`. The child leads a process
 * group of its own, so a terminal's Ctrl-C (which signals the whole foreground group) reaches the
 * sweep or worker only; they pass it on once, with signalPoints, and the point saves a checkpoint.
 * `onLine` sees stdout's lines (a worker turns step lines into progress); only stderr's last lines are kept.
 */
export function runPointCommand(args: string[], log: string, onLine?: (line: string) => void): Promise<ChildExit> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(p);
    let err = '';
    let partial = '';
    p.stdout!.on('data', (d: Buffer) => {
      appendFileSync(log, d);
      if (!onLine) return;
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) if (l.trim()) onLine(l);
    });
    p.stderr!.on('data', (d: Buffer) => {
      appendFileSync(log, d);
      err = (err + d.toString()).split('\n').slice(-20).join('\n');
    });
    p.on('close', (code, signal) => {
      running.delete(p);
      const last = err.trim().split('\n').filter((l) => l.trim() && !/^Warning:/.test(l)).at(-1);
      resolve({ code: code ?? (signal ? 128 : 1), lastError: last ?? (signal ? `killed by ${signal}` : '') });
    });
  });
}

/**
 * Sends every running point command one signal: SIGINT saves a checkpoint and stops it; a second SIGINT stops
 * it at once.
 */
export function signalPoints(signal: NodeJS.Signals = 'SIGINT'): void {
  for (const p of running) p.kill(signal);
}

/** The CLI's entry (`main` of src/cli/main.ts), handed in by the caller: a sweep does not import the CLI above it. */
export type PointMain = (args: string[]) => Promise<number>;

/**
 * The same point command in this process (`main`, as bin/switch-sim.js runs it), its output appended
 * to `log`: no process to start, for tests of whole sweep files. One at a time (it borrows stdout).
 */
let borrowed: Promise<unknown> = Promise.resolve();

export function runPointInProcess(main: PointMain, args: string[], log: string): Promise<ChildExit> {
  const run = borrowed.then(() => runBorrowingStdout(main, args, log)); // one at a time, whoever calls
  borrowed = run.catch(() => undefined);
  return run;
}

async function runBorrowingStdout(main: PointMain, args: string[], log: string): Promise<ChildExit> {
  const writes = { out: process.stdout.write, err: process.stderr.write };
  let lastError = '';
  const to = (err: boolean) => ((chunk: string | Uint8Array) => {
    appendFileSync(log, chunk);
    if (err) lastError = String(chunk).trim().split('\n').filter((l) => l.trim() && !/^Warning:/.test(l)).at(-1) ?? lastError;
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = to(false);
  process.stderr.write = to(true);
  try {
    return { code: await main(args), lastError };
  } finally {
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
  }
}
