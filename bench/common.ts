import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../src/core/config/load.js';
import type { Config } from '../src/core/config/defaults.js';
import type { LayerStats } from '../src/runtime/coordinator/layer-stats.js';
import { train } from '../src/training/trainer.js';

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

/** A timed training run: mean ms per step and the logged records, the first `skip` steps (warm-up) left out. */
export async function timedTrain(config: Config, skip = 2): Promise<{ msPerStep: number; records: { step: number; layers: LayerStats[] }[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'switch-sim-bench-'));
  const times: number[] = [];
  let last = performance.now();
  try {
    await train({ config, name: 'bench', outDir: dir, onStep: () => { const now = performance.now(); times.push(now - last); last = now; } });
    const records = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.layers).slice(skip);
    const counted = times.slice(skip);
    return { msPerStep: counted.reduce((a, b) => a + b, 0) / counted.length, records };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
