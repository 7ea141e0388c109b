import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Config } from '../core/config/defaults.js';
import { ConfigError } from '../core/config/errors.js';
import { InterruptedError } from './errors.js';
import type { LayerStats } from '../runtime/coordinator/layer-stats.js';
import { loadCorpus } from '../core/data/corpus.js';
import { Dataset } from '../core/data/batches.js';
import { CharTokenizer } from '../core/data/tokenizer.js';
import { loadCheckpoint, resolveCheckpointDir, saveCheckpoint } from './checkpoint.js';
import type { CheckpointData } from '../runtime/coordinator/restore.js';
import { provenance, runDirFor, truncateMetrics } from './run-dir.js';
import { MetricsWriter } from './metrics.js';
import { learningRate } from './schedule.js';
import { Session, type TrainingSession } from '../runtime/coordinator/session.js';
import { SpmdSession } from '../runtime/spmd/session.js';
import { PROFILE } from '../core/instrument/recorder.js';
import { assertTrainable } from '../core/model/trainable.js';
import { minOf } from '../core/util/extremes.js';

export interface TrainOptions {
  config: Config;
  /** config name, for the default run directory */
  name: string;
  outDir?: string;
  /** checkpoint directory or run directory to continue from */
  resume?: string;
  /** that checkpoint, when the caller has read it already (it is then not read again) */
  checkpoint?: CheckpointData;
  log?: (line: string) => void;
  /** called after every step (progress bars) */
  onStep?: (s: StepReport) => void;
  /** set to stop after the current step, save a checkpoint and throw InterruptedError */
  stop?: { requested: boolean };
  /** called once every input (config, data, checkpoint, backend) has been validated, before step 1 */
  onReady?: (info: { config: Config; dir: string; session: TrainingSession }) => void | Promise<void>;
  /** called before each step starts (the profiler turns itself on and off here) */
  beforeStep?: (step: number) => void;
}

export interface StepReport {
  step: number;
  steps: number;
  loss: number;
  ce: number;
  tokensPerS: number;
  lr: number;
}

export interface TrainSummary {
  dir: string;
  steps: number;
  /** training, evaluation and checkpoint writing together */
  wall_s: number;
  /** time in training steps only (forward, backward, optimizer): what tokens_per_s divides by */
  train_s: number;
  eval_s: number;
  checkpoint_s: number;
  tokens_per_s: number;
  /** mean training cross-entropy over the last log_every steps */
  train_ce: number;
  val_ce: number | null;
  best_val_ce: number | null;
  params_total: number;
  params_active_per_token: number;
  switch_sim_version: string;
  tfjs_version: string;
  git_commit: string | null;
  config_hash: string;
  /** per logged step, for tests and benchmarks */
  losses: number[];
}

/** Trains for `train.steps` steps: the whole loop of the CLI's `train` command. */
export async function train(opts: TrainOptions): Promise<TrainSummary> {
  const log = opts.log ?? (() => {});
  const ckpt = opts.checkpoint ?? (opts.resume ? loadCheckpoint(opts.resume) : undefined);
  const config = opts.config;
  assertTrainable(config);
  if (ckpt && ckpt.config.seed !== config.seed) log(`note: resuming with seed ${config.seed}; the checkpoint used ${ckpt.config.seed}`);
  const corpus = await loadCorpus(config.data.dataset, config.data.path, log);
  const tokenizer = ckpt ? new CharTokenizer(ckpt.vocab) : CharTokenizer.fromText(corpus.text);
  assertTrainable(config, tokenizer.vocabSize);
  let data: Dataset;
  try {
    data = new Dataset(tokenizer, corpus.text, config.data.val_fraction, config.data.seq_len);
  } catch (e) {
    throw new ConfigError(`data.dataset ${(e as Error).message}`);
  }
  const session: TrainingSession = config.parallel.layout === 'spmd' ? await SpmdSession.create(config, tokenizer.vocabSize) : await Session.create(config, tokenizer.vocabSize);
  const losses: number[] = [];
  try {
    let start = 0;
    if (ckpt) {
      await session.restore(ckpt.arrays);
      start = ckpt.step;
    }
    // every input is valid from here on: the run directory is created or continued
    const dir = runDirFor({ outDir: opts.outDir, name: opts.name, checkpointDir: opts.resume ? resolveCheckpointDir(opts.resume) : undefined });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.yaml'), YAML.stringify(config));
    const past = truncateMetrics(join(dir, 'metrics.jsonl'), start);
    const metrics = new MetricsWriter(dir);
    await opts.onReady?.({ config, dir, session });
    if (ckpt) log(`resumed from step ${start}`);
    if (session.backendChoice) log(session.backendChoice);
    const counts = session.paramCounts();
    log(`corpus ${corpus.name}: ${corpus.text.length} chars, vocab ${tokenizer.vocabSize}; params ${counts.total} (${counts.activePerToken} active per token); out ${dir}`);
    const { batch_size: B, seq_len: T } = config.data;
    const c = config.train;
    const clock = { trainMs: 0, evalMs: 0, checkpointMs: 0 };
    const timed = async <R>(key: keyof typeof clock, f: () => Promise<R>): Promise<R> => {
      const t = performance.now();
      PROFILE?.begin(key === 'evalMs' ? 'evaluation' : 'checkpoint', 'io');
      try {
        return await f();
      } finally {
        PROFILE?.end();
        clock[key] += performance.now() - t;
      }
    };
    const save = (step: number) => timed('checkpointMs', async () => {
      saveCheckpoint(join(dir, 'checkpoints'), { step, config, vocab: tokenizer.chars, rng: { seed: config.seed, step }, arrays: await session.snapshot() });
    });
    const valCes = [...past.valCes];
    let lastEval: { step: number; ce: number } | undefined;
    const evaluate = (step: number) => timed('evalMs', async () => {
      let sum = 0;
      for (let i = 0; i < c.eval_batches; i++) {
        const b = data.batch('val', config.seed, i, B);
        sum += (await session.evaluate(b.x, b.y, B, step)).ce;
      }
      const ce = sum / c.eval_batches;
      metrics.write({ step, time: new Date().toISOString(), val_ce: ce });
      log(`step ${step} val_ce ${ce.toFixed(4)}`);
      valCes.push(ce);
      lastEval = { step, ce };
      return ce;
    });
    let tokens = 0;
    const recentCe: number[] = [];
    let window = { ms: 0, tokens: 0 };
    for (let step = start + 1; step <= c.steps; step++) {
      const b = data.batch('train', config.seed, step, B);
      opts.beforeStep?.(step);
      const t0 = performance.now();
      PROFILE?.begin('step', 'step');
      const r = await session.trainStep(b.x, b.y, B, step);
      if (!Number.isFinite(r.loss)) throw new Error(`loss is ${r.loss} at step ${step}; lower train.lr or raise moe.z_loss_coef`);
      const lr = learningRate(step, c);
      const { gradNorm, metrics: layoutMetrics } = await session.step(lr, step);
      PROFILE?.end();
      const ms = performance.now() - t0;
      clock.trainMs += ms;
      tokens += B * T;
      window = { ms: window.ms + ms, tokens: window.tokens + B * T };
      recentCe.push(r.ce);
      if (recentCe.length > c.log_every) recentCe.shift();
      const tps = window.tokens / (window.ms / 1000); // training time only: evaluation and checkpoints are not in it
      opts.onStep?.({ step, steps: c.steps, loss: r.loss, ce: r.ce, tokensPerS: tps, lr });
      if (step % c.log_every === 0 || step === c.steps) {
        losses.push(r.loss);
        const deviceMemory = await session.memory();
        metrics.write({ step, time: new Date().toISOString(), lr, loss: r.loss, ce: r.ce, balance_loss: r.balance_loss, z_loss: r.z_loss, grad_norm: gradNorm, ...layoutMetrics, tokens_per_s: tps, layers: r.layers.map(round), device_memory: deviceMemory, rss_mb: +(process.memoryUsage().rss / 2 ** 20).toFixed(1) });
        if (!opts.onStep) log(`step ${step}/${c.steps} loss ${r.loss.toFixed(4)} ce ${r.ce.toFixed(4)} lr ${lr.toExponential(2)} ${tps.toFixed(0)} tok/s`);
        window = { ms: 0, tokens: 0 };
      }
      if (c.eval_every > 0 && step % c.eval_every === 0) await evaluate(step);
      if (c.checkpoint_every > 0 && step % c.checkpoint_every === 0) await save(step);
      await new Promise((r) => setImmediate(r)); // let signals (Ctrl-C) and I/O in between steps
      if (opts.stop?.requested) {
        if (c.checkpoint_every === 0 || step % c.checkpoint_every !== 0) await save(step);
        throw new InterruptedError(`interrupted: saved ${join(dir, 'checkpoints', `step-${step}`)}; continue with --resume ${dir}`);
      }
    }
    if (c.steps > start && (c.checkpoint_every === 0 || c.steps % c.checkpoint_every !== 0)) await save(c.steps);
    // the final evaluation runs once: the loop's own evaluation of the last step counts
    const val = c.eval_batches > 0 ? (lastEval?.step === c.steps ? lastEval.ce : await evaluate(c.steps)) : null;
    const trainS = clock.trainMs / 1000;
    const summary = {
      steps: c.steps,
      wall_s: (clock.trainMs + clock.evalMs + clock.checkpointMs) / 1000,
      train_s: trainS,
      eval_s: clock.evalMs / 1000,
      checkpoint_s: clock.checkpointMs / 1000,
      tokens_per_s: tokens / Math.max(trainS, 1e-9),
      train_ce: recentCe.length > 0 ? recentCe.reduce((a, b) => a + b, 0) / recentCe.length : NaN,
      val_ce: val,
      best_val_ce: valCes.length > 0 ? minOf(valCes) : null,
      params_total: counts.total,
      params_active_per_token: counts.activePerToken,
      ...provenance(config),
    };
    metrics.summary(summary);
    return { dir, ...summary, losses };
  } finally {
    await session.close();
  }
}

/** Rounds the timing fields of layer stats for compact logs. */
function round(s: LayerStats): LayerStats {
  return { ...s, device_compute_ms: s.device_compute_ms.map((x) => +x.toFixed(2)), wait_ms: +s.wait_ms.toFixed(2), router_entropy: +s.router_entropy.toFixed(4) };
}
