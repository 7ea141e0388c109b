import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../core/config/defaults.js';
import { ConfigError } from '../../core/config/errors.js';
import { analyseSpmd, spmdPage, type SpmdProfile } from './spmd.js';
import type { ExpertDevice } from '../../runtime/devices/device.js';
import { configHash } from '../../core/config/hash.js';
import { train } from '../../training/trainer.js';
import type { Session } from '../../runtime/coordinator/session.js';
import { analyse, type ProfileAnalysis } from './analysis.js';
import { profilePage } from './page.js';
import { absoluteNow, Recorder, setProfile } from '../../core/instrument/recorder.js';
import { toChromeTrace } from '../../core/instrument/trace.js';
import { maxOf } from '../../core/util/extremes.js';

export interface ProfileOptions {
  config: Config;
  name: string;
  /** profiled steps (as many unprofiled steps are interleaved with them, to measure the profiler's cost) */
  steps: number;
  /** steps before any measurement (compilation, first allocations) */
  warmup: number;
  outDir?: string;
  log?: (line: string) => void;
}

/** What profiling itself costs, measured in the same run. */
export interface Instrumentation {
  /** mean step time with the profiler off and on, over interleaved steps */
  step_ms_off: number;
  step_ms_on: number;
  measured_overhead_fraction: number;
  /** spans recorded per profiled step, what one costs (measured apart), and their share of a step */
  spans_per_step: number;
  ns_per_span: number;
  estimated_overhead_fraction: number;
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

export interface ProfileReport extends ProfileAnalysis {
  config: { name: string; hash: string; devices: number; transport: string; payload: string; microbatches: number; n_experts: number; d_model: number; force_routing: string };
  warmup: number;
  clock: ClockCheck[];
  instrumentation: Instrumentation;
}

export interface ProfileResult {
  dir: string;
  report: ProfileReport;
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

/** What one recorded span costs: begin/end pairs on a scratch recorder. */
function nsPerSpan(): number {
  const r = new Recorder();
  const n = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    r.begin('x');
    r.end();
  }
  return ((performance.now() - t0) / n) * 1e6;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const stamp = () => new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '');

/** What a profiled run recorded, and its step times with the profiler off and on. */
interface Recorded {
  rec: Recorder;
  dir: string;
  config: Config;
  times: { on: number[]; off: number[] };
  clock: ClockCheck[];
}

/** Trains warm-up steps, then alternates unprofiled and profiled steps, recording the profiled ones. */
async function recordRun(opts: ProfileOptions): Promise<Recorded> {
  const config = structuredClone(opts.config);
  config.train.steps = opts.warmup + 2 * opts.steps;
  config.train.eval_every = 0;
  config.train.checkpoint_every = 0;
  config.train.log_every = config.train.steps;
  const dir = opts.outDir ?? join('runs', `profile-${opts.name}-${stamp()}`);
  const spmd = config.parallel.layout === 'spmd';
  const rec = new Recorder();
  const profiled = (step: number) => step > opts.warmup && (step - opts.warmup) % 2 === 0;
  const times = { on: [] as number[], off: [] as number[] };
  let clock: ClockCheck[] = [];
  let t0 = 0;
  try {
    await train({
      config, name: opts.name, outDir: dir, log: opts.log,
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
        if (s.step > opts.warmup) (profiled(s.step) ? times.on : times.off).push(performance.now() - t0);
      },
    });
  } finally {
    setProfile(null);
  }
  return { rec, dir, config, times, clock };
}

/** The profiler's cost, measured in the run (interleaved steps) and estimated (spans × ns per span). */
function instrumentation(rec: Recorder, steps: number[], times: Recorded['times']): Instrumentation {
  const onMs = mean(times.on);
  const offMs = mean(times.off);
  const inSteps = new Set(steps);
  const spansPerStep = rec.spans.filter((s) => inSteps.has(s.step)).length / Math.max(1, steps.length);
  const ns = nsPerSpan();
  return {
    step_ms_off: offMs, step_ms_on: onMs, measured_overhead_fraction: offMs > 0 ? (onMs - offMs) / offMs : 0,
    spans_per_step: spansPerStep, ns_per_span: ns, estimated_overhead_fraction: (spansPerStep * ns) / 1e6 / Math.max(1e-9, onMs),
  };
}

const reportConfig = (opts: ProfileOptions, config: Config) => ({
  name: opts.name, hash: configHash(opts.config), devices: config.parallel.devices, transport: config.parallel.transport, payload: config.parallel.payload,
  microbatches: config.parallel.microbatches, n_experts: config.moe.n_experts, d_model: config.model.d_model, force_routing: config.moe.force_routing,
});

/** `switch-sim profile` on an spmd run: every device's compute, exchanges and barrier waits, and who sent what to whom. */
export interface SpmdProfileReport extends SpmdProfile {
  config: ReturnType<typeof reportConfig> & { layout: 'spmd' };
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
  if (opts.config.parallel.layout !== 'spmd') throw new ConfigError(`parallel.layout must be spmd for profileSpmdRun, got ${opts.config.parallel.layout}`);
  const { rec, dir, config, times } = await recordRun(opts);
  const D = config.parallel.devices;
  const analysis = analyseSpmd(rec, D);
  const report: SpmdProfileReport = { config: { ...reportConfig(opts, config), layout: 'spmd' }, warmup: opts.warmup, instrumentation: instrumentation(rec, analysis.steps, times), ...analysis };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'trace.json'), JSON.stringify(toChromeTrace(rec, D, { config: report.config })));
  writeFileSync(join(dir, 'profile.json'), `${JSON.stringify(report, null, 1)}\n`);
  const worst = maxOf(analysis.devices.map((d) => d.barrier_share));
  const intro = [
    `${opts.name}: spmd, ${D} devices, ${config.moe.n_experts} experts; ${analysis.steps.length} profiled steps after ${opts.warmup} warm-up steps, ${analysis.step_ms.toFixed(1)} ms per step.`,
    `Up to ${(100 * worst).toFixed(1)}% of a device's step is spent at barriers waiting for the slowest device. Open trace.json in https://ui.perfetto.dev for every event.`,
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
  if (opts.config.parallel.layout !== 'coordinator') throw new ConfigError(`parallel.layout must be coordinator for profileRun (profileSpmdRun profiles spmd), got ${opts.config.parallel.layout}`);
  const { rec, dir, config, times, clock } = await recordRun(opts);
  const D = config.parallel.devices;
  const analysis = analyse(rec, D);
  const report: ProfileReport = {
    config: reportConfig(opts, config),
    warmup: opts.warmup,
    clock,
    instrumentation: instrumentation(rec, analysis.steps, times),
    ...analysis,
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'trace.json'), JSON.stringify(toChromeTrace(rec, D, { config: report.config })));
  writeFileSync(join(dir, 'profile.json'), `${JSON.stringify(report, null, 1)}\n`);
  const intro = [
    `${opts.name}: ${D} devices (${config.parallel.transport}, payload ${config.parallel.payload}), ${config.moe.n_experts} experts, ` +
      `micro-batches ${config.parallel.microbatches}, routing ${config.moe.force_routing}; ${analysis.steps.length} profiled steps after ${opts.warmup} warm-up steps.`,
    `Dispatch overhead ${report.dispatch_overhead.ms_per_step.toFixed(2)} ms per step, ${(100 * report.dispatch_overhead.fraction).toFixed(1)}% of a ` +
      `${analysis.split.step_ms.toFixed(1)} ms step. Open trace.json in https://ui.perfetto.dev for every event.`,
  ];
  writeFileSync(join(dir, 'profile.html'), profilePage(rec, analysis, D, `switch-sim profile: ${opts.name}`, intro));
  return { dir, report };
}
