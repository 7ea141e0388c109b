import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../core/config/defaults.js';
import { ConfigError } from '../../core/config/errors.js';
import { configHash } from '../../core/config/hash.js';
import { toChromeTrace } from '../../core/instrument/trace.js';
import { maxOf } from '../../core/util/extremes.js';
import { analyse, type ProfileAnalysis } from './analysis.js';
import { instrumentation, type Instrumentation } from './instrumentation.js';
import { profilePage } from './page.js';
import { recordRun, type ClockCheck, type ProfileOptions } from './record.js';
import { analyseSpmd, spmdPage, type SpmdProfile } from './spmd.js';

export type { ClockCheck, ProfileOptions } from './record.js';
export type { Instrumentation } from './instrumentation.js';

/** The checkpoint a profile continued from (profile --checkpoint), or null for a model trained from scratch. */
export type FromCheckpoint = { dir: string; step: number } | null;

export interface ProfileReport extends ProfileAnalysis {
  config: { name: string; hash: string; devices: number; transport: string; payload: string; microbatches: number;
    n_experts: number; d_model: number; force_routing: string };
  from_checkpoint: FromCheckpoint;
  warmup: number;
  clock: ClockCheck[];
  instrumentation: Instrumentation;
}

export interface ProfileResult {
  dir: string;
  report: ProfileReport;
}

const fromCheckpoint = (opts: ProfileOptions): FromCheckpoint =>
  (opts.checkpoint ? { dir: opts.checkpoint.dir, step: opts.checkpoint.step } : null);
/** What the steps came after, for the page's first line. */
const after = (opts: ProfileOptions) =>
  `${opts.warmup} warm-up steps${opts.checkpoint
    ? `, continuing from checkpoint ${opts.checkpoint.dir} (step ${opts.checkpoint.step})`
    : ''}`;

const reportConfig = (opts: ProfileOptions, config: Config) => ({
  name: opts.name, hash: configHash(opts.config), devices: config.parallel.devices,
  transport: config.parallel.transport, payload: config.parallel.payload,
  microbatches: config.parallel.microbatches, n_experts: config.moe.n_experts, d_model: config.model.d_model,
  force_routing: config.moe.force_routing,
});

/**
 * `switch-sim profile` on an spmd run: every device's compute, exchanges and barrier waits, and who sent what
 * to whom.
 */
export interface SpmdProfileReport extends SpmdProfile {
  config: ReturnType<typeof reportConfig> & { layout: 'spmd' };
  from_checkpoint: FromCheckpoint;
  warmup: number;
  instrumentation: Instrumentation;
}

/**
 * `switch-sim profile` with parallel.layout spmd: the same interleaved run; the trace has each device's
 * dense work on its compute thread and its exchanges (pack with the bytes sent to each device, barrier
 * waits, experts, unpack) on its link thread; profile.json and profile.html say where each device's
 * step went and how many bytes each (source, destination) pair moved.
 */
export async function profileSpmdRun(opts: ProfileOptions): Promise<{ dir: string; report: SpmdProfileReport }> {
  if (opts.config.parallel.layout !== 'spmd')
    throw new ConfigError(`parallel.layout must be spmd for profileSpmdRun, got ${opts.config.parallel.layout}`);
  const { rec, dir, config, times } = await recordRun(opts);
  const D = config.parallel.devices;
  const analysis = analyseSpmd(rec, D);
  const report: SpmdProfileReport = {
    config: { ...reportConfig(opts, config), layout: 'spmd' }, from_checkpoint: fromCheckpoint(opts),
    warmup: opts.warmup, instrumentation: instrumentation(rec, analysis.steps, times), ...analysis,
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'trace.json'), JSON.stringify(toChromeTrace(rec, D, { config: report.config })));
  writeFileSync(join(dir, 'profile.json'), `${JSON.stringify(report, null, 1)}\n`);
  const worst = maxOf(analysis.devices.map((d) => d.barrier_share));
  const intro = [
    `${opts.name}: spmd, ${D} devices, ${config.moe.n_experts} experts; ${analysis.steps.length} profiled steps ` +
      `after ${after(opts)}, ` +
      `${analysis.step_ms.toFixed(1)} ms per step.`,
    `Up to ${(100 * worst).toFixed(1)}% of a device's step is spent at barriers waiting for the slowest device. Open ` +
      `trace.json in https://ui.perfetto.dev for every event.`,
  ];
  writeFileSync(join(dir, 'profile.html'), spmdPage(analysis, `switch-sim profile: ${opts.name} (spmd)`, intro));
  return { dir, report };
}

/**
 * `switch-sim profile`: trains warm-up steps, then alternates unprofiled and profiled steps (so that
 * the profiler's cost is measured in the same run), and writes trace.json, profile.json and
 * profile.html beside the run's outputs. The coordinator layout; spmd runs go to profileSpmdRun.
 */
export async function profileRun(opts: ProfileOptions): Promise<ProfileResult> {
  if (opts.config.parallel.layout !== 'coordinator')
    throw new ConfigError(`parallel.layout must be coordinator for profileRun (profileSpmdRun profiles spmd), got ` +
      `${opts.config.parallel.layout}`);
  const { rec, dir, config, times, clock } = await recordRun(opts);
  const D = config.parallel.devices;
  const analysis = analyse(rec, D);
  const report: ProfileReport = {
    config: reportConfig(opts, config),
    from_checkpoint: fromCheckpoint(opts),
    warmup: opts.warmup,
    clock,
    instrumentation: instrumentation(rec, analysis.steps, times),
    ...analysis,
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'trace.json'), JSON.stringify(toChromeTrace(rec, D, { config: report.config })));
  writeFileSync(join(dir, 'profile.json'), `${JSON.stringify(report, null, 1)}\n`);
  const intro = [
    `${opts.name}: ${D} devices (${config.parallel.transport}, payload ${config.parallel.payload}), ` +
      `${config.moe.n_experts} experts, ` +
      `micro-batches ${config.parallel.microbatches}, routing ${config.moe.force_routing}; ${analysis.steps.length} ` +
      `profiled steps after ${after(opts)}.`,
    `Dispatch overhead ${report.dispatch_overhead.ms_per_step.toFixed(2)} ms per step, ` +
      `${(100 * report.dispatch_overhead.fraction).toFixed(1)}% of a ` +
      `${analysis.split.step_ms.toFixed(1)} ms step. Open trace.json in https://ui.perfetto.dev for every event.`,
  ];
  writeFileSync(join(dir, 'profile.html'), profilePage(rec, analysis, D, `switch-sim profile: ${opts.name}`, intro));
  return { dir, report };
}
