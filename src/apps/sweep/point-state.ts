import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../core/config/defaults.js';
import { configHash } from '../../core/config/hash.js';
import { readJson as readJsonFile } from '../../core/util/fs.js';

/**
 * Where a point's run directory stands, for the config it is to run now:
 *   fresh    nothing of this config there (an empty folder, or another config's run: start over)
 *   resume   a checkpoint of this very config before its last step (an interrupted point)
 *   trained  this config's training finished (summary.json), its profile still to record
 *   done     all recorded
 * Only a run of the same config (the same hash) is ever continued or collected: a result is never
 * taken from another config.
 */
export type PointState = { kind: 'fresh' } | { kind: 'resume'; step: number } | { kind: 'trained' } | { kind: 'done' };

const readJson = (file: string) => readJsonFile<Record<string, unknown>, undefined>(file, () => undefined);

/** The newest checkpoint step of a run directory whose config hashes to `hash`, if any. */
function checkpointOf(runDir: string, hash: string): number | undefined {
  const dir = join(runDir, 'checkpoints');
  if (!existsSync(dir)) return undefined;
  const steps = readdirSync(dir).map((d) => /^step-(\d+)$/.exec(d)).filter((m): m is RegExpExecArray => m !== null).map((m) => +m[1]!).sort((
    a, b,
  ) => b - a);
  for (const step of steps) {
    const manifest = readJson(join(dir, `step-${step}`, 'checkpoint.json'));
    if (manifest?.config && configHash(manifest.config as Config) === hash) return step;
  }
  return undefined;
}

export function pointState(runDir: string, config: Config, profiled: boolean): PointState {
  const hash = configHash(config);
  const summary = readJson(join(runDir, 'summary.json'));
  if (summary?.config_hash === hash && summary.steps === config.train.steps) {
    return !profiled || existsSync(join(runDir, 'profile', 'profile.json')) ? { kind: 'done' } : { kind: 'trained' };
  }
  const step = checkpointOf(runDir, hash);
  return step !== undefined && step < config.train.steps ? { kind: 'resume', step } : { kind: 'fresh' };
}
