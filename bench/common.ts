import { existsSync } from 'node:fs';
import { resolveConfig } from '../src/config/load.js';
import type { Config } from '../src/config/defaults.js';

export const SHAKESPEARE = new URL('../../shared/data/tinyshakespeare.txt', import.meta.url).pathname;

/** configs/tiny-shakespeare.yaml on the shared copy of the data, for `steps` steps, no evaluation or checkpoints. */
export function benchConfig(steps: number, ...sets: string[]): Config {
  if (!existsSync(SHAKESPEARE)) throw new Error(`benchmarks read ${SHAKESPEARE}; it is missing`);
  return resolveConfig({
    file: new URL('../configs/tiny-shakespeare.yaml', import.meta.url).pathname,
    sets: [`data.path=${SHAKESPEARE}`, `train.steps=${steps}`, 'train.eval_every=0', 'train.checkpoint_every=0', 'train.eval_batches=1',
      `train.log_every=${steps}`, 'train.warmup_steps=1', ...sets],
  }).config;
}

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
