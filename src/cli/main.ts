#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { BackendError } from '../core/backend/errors.js';
import { ConfigError } from '../core/config/errors.js';
import { DeviceError } from '../runtime/devices/errors.js';
import { InterruptedError } from '../training/errors.js';
import { CheckpointError } from '../runtime/coordinator/restore.js';
import { register as backends } from './commands/backends.js';
import { register as bench } from './commands/bench.js';
import { register as evaluate } from './commands/eval.js';
import { register as generate } from './commands/generate.js';
import { register as inspect } from './commands/inspect.js';
import { register as profile } from './commands/profile.js';
import { register as sweep } from './commands/sweep.js';
import { register as train } from './commands/train.js';
import { register as simulate } from './commands/simulate.js';
import { register as worker } from './commands/worker.js';

/** Maps an error to one line and an exit code: 2 bad input, 1 failure, 130 interrupted. */
export function exitCodeFor(e: unknown): { code: number; line: string } {
  if (e instanceof InterruptedError) return { code: 130, line: e.message };
  if (e instanceof ConfigError || e instanceof CheckpointError || e instanceof BackendError) {
    return { code: 2, line: e instanceof ConfigError ? e.message : `error: ${e.message}` };
  }
  if (e instanceof CommanderError) return { code: e.exitCode === 0 ? 0 : 2, line: '' };
  if (e instanceof DeviceError) return { code: 1, line: `error: ${e.message}` };
  return { code: 1, line: `error: ${(e as Error)?.message ?? String(e)}` };
}

export function buildProgram(): Command {
  const program = new Command('switch-sim')
    .description('Expert-parallel Switch Transformer training, simulated on one machine')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s.split('\n')[0]! + '\n') });

  for (const register of [train, evaluate, generate, inspect, profile, bench, backends, sweep, simulate, worker])
    register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    const { code, line } = exitCodeFor(e);
    if (line) process.stderr.write(`${line}\n`);
    return code;
  }
}

/** For the process that runs the CLI: a reader that stops early (`| head`) is not an error. */
export function quietOnEpipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('cli/main.ts')) {
  quietOnEpipe();
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
