import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Config } from '../../core/config/defaults.js';
import { ConfigError, show } from '../../core/config/errors.js';
import { absoluteNow, Recorder, setProfile } from '../../core/instrument/recorder.js';
import { timestampedRunDir } from '../../core/util/run-name.js';
import type { Session } from '../../runtime/coordinator/session.js';
import type { ExpertDevice } from '../../runtime/devices/device.js';
import type { LoadedCheckpoint } from '../../training/checkpoint.js';
import { train } from '../../training/trainer.js';
import { addGcSpans, gcPauses } from './gc.js';

export interface ProfileOptions {
  config: Config;
  name: string;
  /** profiled steps (as many unprofiled steps are interleaved with them, to measure the profiler's cost) */
  steps: number;
  /** steps before any measurement (compilation, first allocations) */
  warmup: number;
  /**
   * a checkpoint to continue from (read into memory): the trained model is profiled, its run directory
   * left as it is; every step is counted after the checkpoint's
   */
  checkpoint?: LoadedCheckpoint;
  outDir?: string;
  log?: (line: string) => void;
}

export interface ClockCheck {
  device: number;
  /** the device's clock minus the coordinator's, as measured (ms) */
  measured_offset_ms: number;
  /** half the probe's round trip: offsets within it are indistinguishable from 0 */
  uncertainty_ms: number;
  /** the correction applied to the device's timestamps */
  applied_offset_ms: number;
}

/** What a profiled run recorded, and its step times with the profiler off and on. */
export interface Recorded {
  rec: Recorder;
  dir: string;
  config: Config;
  times: { on: number[]; off: number[] };
  clock: ClockCheck[];
}

/** Aligns each device's clock with the coordinator's: the best of a few probes (smallest round trip). */
async function checkClocks(devices: ExpertDevice[], rec: Recorder): Promise<ClockCheck[]> {
  const out: ClockCheck[] = [];
  for (const [d, dev] of devices.entries()) {
    let best = { offset: 0, rtt: Infinity };
    for (let i = 0; i < 5; i++) {
      const c0 = absoluteNow();
      const w = await dev.clock();
      const c1 = absoluteNow();
      if (c1 - c0 < best.rtt) best = { offset: w - (c0 + c1) / 2, rtt: c1 - c0 };
    }
    const applied = Math.abs(best.offset) > best.rtt / 2 ? best.offset : 0;
    rec.offsets[d] = applied;
    out.push({ device: d, measured_offset_ms: best.offset, uncertainty_ms: best.rtt / 2, applied_offset_ms: applied });
  }
  return out;
}

const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));

/**
 * The run directory a checkpoint belongs to stays as it is: the profile's own directory is neither that
 * run directory nor inside its checkpoints (a sub-folder such as DIR/profile is the profile's own).
 */
function checkOutDir(outDir: string, ck: LoadedCheckpoint): void {
  const checkpoints = dirname(ck.dir);
  const home = basename(checkpoints) === 'checkpoints' ? dirname(checkpoints) : undefined;
  const out = real(outDir);
  const inside = (dir: string) => {
    const rel = relative(real(dir), out);
    return !isAbsolute(rel) && rel.split(sep)[0] !== '..';
  };
  if ((home && out === real(home)) || inside(home ? checkpoints : ck.dir)) {
    throw new ConfigError('profile --out must not be the checkpoint\'s run directory or inside its checkpoints, '
      + 'which the profile leaves '
      + `as they are (got ${show(outDir)})`);
  }
}

/**
 * A profile replaces only a profile: an --out that holds a training run (its files, no profile.json) is
 * refused, never deleted.
 */
function checkNotARun(dir: string): void {
  const held = ['run.json', 'config.yaml', 'metrics.jsonl', 'summary.json', 'checkpoints'].filter((f) =>
    existsSync(join(dir, f)));
  if (held.length > 0 && !existsSync(join(dir, 'profile.json'))) {
    throw new ConfigError(`profile --out must be a new directory or an earlier profile's, which it `
      + `replaces (got ${show(dir)}, `
      + `which holds a run: ${held.join(', ')})`);
  }
}

/**
 * Trains warm-up steps, then alternates unprofiled and profiled steps, recording the profiled ones;
 * from a checkpoint, the steps follow its step. The coordinator's garbage-collection pauses during
 * the profiled steps become spans of their own (`gc`).
 */
export async function recordRun(opts: ProfileOptions): Promise<Recorded> {
  const start = opts.checkpoint?.step ?? 0;
  const config = structuredClone(opts.config);
  config.train.steps = start + opts.warmup + 2 * opts.steps;
  config.train.eval_every = 0;
  config.train.checkpoint_every = 0;
  config.train.log_every = config.train.steps;
  const dir = opts.outDir ?? timestampedRunDir(`profile-${opts.name}`);
  if (opts.checkpoint) checkOutDir(dir, opts.checkpoint);
  checkNotARun(dir);
  const spmd = config.parallel.layout === 'spmd';
  const rec = new Recorder();
  const profiled = (step: number) => step - start > opts.warmup && (step - start - opts.warmup) % 2 === 0;
  const times = { on: [] as number[], off: [] as number[] };
  let clock: ClockCheck[] = [];
  let t0 = 0;
  const gc = gcPauses();
  try {
    await train({
      // a profile is recorded afresh: one already in dir is replaced
      config, name: opts.name, outDir: dir, force: true, log: opts.log,
      checkpoint: opts.checkpoint, // in memory: train writes only to dir
      onReady: async ({ session }) => {
        // spmd devices stamp absolute time, which every thread of the process shares: nothing to align
        if (!spmd) clock = await checkClocks((session as Session).devices, rec);
      },
      beforeStep: (step) => {
        rec.step = step;
        setProfile(profiled(step) ? rec : null);
        t0 = performance.now();
      },
      onStep: (s) => {
        if (s.step - start > opts.warmup) (profiled(s.step) ? times.on : times.off).push(performance.now() - t0);
      },
    });
  } finally {
    setProfile(null);
    addGcSpans(rec, gc.stop());
  }
  return { rec, dir, config, times, clock };
}
