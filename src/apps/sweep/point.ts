import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Config } from '../../core/config/defaults.js';
import type { ChildExit } from './child.js';
import { pointState, type PointState } from './point-state.js';

/** One sweep point to run, wherever it runs (a local sweep, or a worker taking it from the queue). */
export interface PointRun {
  /** the point's run directory: its training run, and its profile in profile/ */
  runDir: string;
  config: Config;
  /** profiled steps (`record: profile`), or null */
  profileSteps: number | null;
  /**
   * continue what runDir holds of this very config (a checkpoint, a finished training, its profile);
   * otherwise the point starts over in an emptied runDir
   */
  continueRun: boolean;
  /**
   * runs `switch-sim ARGS` for the point, its output appended to `log` (a child process, or the CLI in this
   * process)
   */
  run: (args: string[], log: string) => Promise<ChildExit>;
}

/** How a point's commands ended, and where its run directory stood before them. */
export interface PointOutcome extends ChildExit {
  state: PointState;
}

/**
 * Runs a point: `train` (or `train --resume` from its own checkpoint), then, when it records a profile,
 * `profile --checkpoint` from the run's final checkpoint, so that the profile describes the model the
 * row's losses come from; the profile leaves the run as it is and writes only to profile/.
 */
export async function runPoint(p: PointRun): Promise<PointOutcome> {
  const state: PointState = p.continueRun ? pointState(p.runDir, p.config, p.profileSteps !== null) : { kind: 'fresh' };
  if (state.kind === 'fresh') rmSync(p.runDir, { recursive: true, force: true }); // nothing of this config to continue
  mkdirSync(p.runDir, { recursive: true });
  const configFile = join(p.runDir, 'point.yaml');
  writeFileSync(configFile, YAML.stringify(p.config));
  const log = join(p.runDir, 'log.txt');
  let r: ChildExit = { code: 0, lastError: '' };
  if (state.kind === 'fresh') r = await p.run(['train', '--config', configFile, '--out', p.runDir], log);
  else if (state.kind === 'resume') r = await p.run(['train', '--resume', p.runDir, '--config', configFile], log);
  if (r.code === 0 && p.profileSteps !== null && state.kind !== 'done') {
    const profileDir = join(p.runDir, 'profile');
    rmSync(profileDir, { recursive: true, force: true }); // an unfinished profile of an earlier try
    r = await p.run(
      ['profile', '--checkpoint', p.runDir, '--steps', String(p.profileSteps), '--warmup', '1', '--out', profileDir],
      log,
    );
  }
  return { state, ...r };
}
