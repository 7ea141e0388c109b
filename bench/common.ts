import { resolveConfig } from '../src/config/load.js';
import type { Config } from '../src/config/defaults.js';

/** `--data PATH`: a local copy of Tiny Shakespeare; without it, the usual cache (then a one-time download). */
export function dataPath(): string {
  const i = process.argv.indexOf('--data');
  return i >= 0 ? process.argv[i + 1] ?? '' : '';
}

/** `--config FILE`: the config benchmarks train (default configs/tiny-shakespeare.yaml). */
export function configFile(): string {
  const i = process.argv.indexOf('--config');
  return i >= 0 ? process.argv[i + 1]! : new URL('../configs/tiny-shakespeare.yaml', import.meta.url).pathname;
}

/** The benchmark's config (`--config`, default configs/tiny-shakespeare.yaml) for `steps` steps, no evaluation or checkpoints. */
export function benchConfig(steps: number, ...sets: string[]): Config {
  return resolveConfig({
    file: configFile(),
    sets: [`data.path=${dataPath()}`, `train.steps=${steps}`, 'train.eval_every=0', 'train.checkpoint_every=0', 'train.eval_batches=1',
      `train.log_every=${steps}`, 'train.warmup_steps=1', ...sets],
  }).config;
}

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
