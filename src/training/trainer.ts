import { join } from 'node:path';
import type { Config } from '../core/config/defaults.js';
import { ConfigError } from '../core/config/errors.js';
import { InterruptedError } from './errors.js';
import type { LayerStats } from '../runtime/coordinator/layer-stats.js';
import { loadCorpus } from '../core/data/corpus.js';
import { Dataset } from '../core/data/batches.js';
import { CharTokenizer } from '../core/data/tokenizer.js';
import { loadCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import { provenance } from './provenance.js';
import { RunDir } from './run-dir.js';
import { learningRate } from './schedule.js';
import { Session, type TrainingSession } from '../runtime/coordinator/session.js';
import { SpmdSession } from '../runtime/spmd/session.js';
import { PROFILE } from '../core/instrument/recorder.js';
import { assertTrainable } from '../core/model/trainable.js';
import { minOf } from '../core/util/extremes.js';
import { tuneHeap } from '../core/util/heap.js';
import type { TotalsSummary } from './run-totals.js';

export interface TrainOptions {
  config: Config;
  /** config name, for the default run directory */
  name: string;
  outDir?: string;
  /** with outDir: delete a run already there and start this one in its place (otherwise that is refused) */
  force?: boolean;
  /** checkpoint directory or run directory to continue from */
  resume?: string;
  /** that checkpoint, when the caller has read it already (it is then not read again) */
  checkpoint?: LoadedCheckpoint;
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

/**
 * summary.json, and what `train` returns: every figure covers the whole run, all its resumes together
 * (times and tokens/s are null when part of the run was trained without them being recorded).
 */
export interface TrainSummary extends TotalsSummary {
  dir: string;
  /** true when --resume found the run already complete: nothing ran, the figures are its summary.json's */
  alreadyComplete: boolean;
  steps: number;
  val_ce: number | null;
  best_val_ce: number | null;
  params_total: number;
  params_active_per_token: number;
  switch_sim_version: string;
  tfjs_version: string;
  git_commit: string | null;
  config_hash: string;
  /** set when some figures are unknown, saying why */
  note?: string;
  /** per logged step of this invocation, for tests and benchmarks */
  losses: number[];
}

/** Trains for `train.steps` steps: the whole loop of the CLI's `train` command. */
export async function train(opts: TrainOptions): Promise<TrainSummary> {
  const log = opts.log ?? (() => {});
  const ckpt = opts.checkpoint ?? (opts.resume ? loadCheckpoint(opts.resume) : undefined);
  const config = opts.config;
  const run = RunDir.plan({ outDir: opts.outDir, name: opts.name, checkpoint: ckpt, force: opts.force,
    steps: config.train.steps, log });
  if (run.complete) {
    log(`run ${run.path} is already complete (step ${ckpt!.step} of ${config.train.steps}): nothing ` +
      `to do, nothing changed`);
    return { ...(run.readSummary() as unknown as TrainSummary), dir: run.path, alreadyComplete: true, losses: [] };
  }
  assertTrainable(config);
  tuneHeap();
  if (ckpt && ckpt.config.seed !== config.seed)
    log(`note: resuming with seed ${config.seed}; the checkpoint used ${ckpt.config.seed}`);
  const corpus = await loadCorpus(config.data.dataset, config.data.path, log);
  const tokenizer = ckpt ? new CharTokenizer(ckpt.vocab) : CharTokenizer.fromText(corpus.text);
  assertTrainable(config, tokenizer.vocabSize);
  let data: Dataset;
  try {
    data = new Dataset(tokenizer, corpus.text, config.data.val_fraction, config.data.seq_len);
  } catch (e) {
    throw new ConfigError(`data.dataset ${(e as Error).message}`);
  }
  const session: TrainingSession = config.parallel.layout === 'spmd' ? await SpmdSession.create(config,
    tokenizer.vocabSize) : await Session.create(config, tokenizer.vocabSize);
  const losses: number[] = [];
  try {
    let start = 0;
    if (ckpt) {
      await session.restore(ckpt.arrays);
      start = ckpt.step;
    }
    // every input is valid from here on: the run directory is created, replaced (--force) or continued
    const past = run.open(config);
    const { path: dir, metrics } = run;
    await opts.onReady?.({ config, dir, session });
    if (ckpt) log(`resumed from step ${start}`);
    if (session.backendChoice) log(session.backendChoice);
    const counts = session.paramCounts();
    log(`corpus ${corpus.name}: ${corpus.text.length} chars, vocab ${tokenizer.vocabSize}; params ${counts.total} ` +
      `(${counts.activePerToken} active per token); out ${dir}`);
    const { batch_size: B, seq_len: T } = config.data;
    const c = config.train;
    const timed = <R>(kind: 'eval' | 'checkpoint', f: () => Promise<R>): Promise<R> => run.time(kind, async () => {
      PROFILE?.begin(kind === 'eval' ? 'evaluation' : 'checkpoint', 'io');
      try {
        return await f();
      } finally {
        PROFILE?.end();
      }
    });
    const save = (step: number) => timed('checkpoint', async () => {
      run.saveCheckpoint({ step, config, vocab: tokenizer.chars, rng: { seed: config.seed, step },
        arrays: await session.snapshot() });
    });
    const valCes = [...past.valCes];
    let lastEval = past.lastEval;
    const evaluate = (step: number) => timed('eval', async () => {
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
    // the last step's checkpoint comes after the final evaluation, so that it carries that evaluation's time
    const savesAt = (step: number) => c.checkpoint_every > 0 && step % c.checkpoint_every === 0 && step !== c.steps;
    let window = { ms: 0, tokens: 0 };
    for (let step = start + 1; step <= c.steps; step++) {
      const b = data.batch('train', config.seed, step, B);
      opts.beforeStep?.(step);
      const t0 = performance.now();
      PROFILE?.begin('step', 'step');
      const lr = learningRate(step, c);
      const logged = step % c.log_every === 0 || step === c.steps;
      const r = await session.trainStep(b.x, b.y, B, step, { lr, logged });
      if (!Number.isFinite(r.loss))
        throw new Error(`loss is ${r.loss} at step ${step}; lower train.lr or raise moe.z_loss_coef`);
      const { gradNorm, metrics: layoutMetrics } = await session.step(lr, step);
      PROFILE?.end();
      const ms = performance.now() - t0;
      run.addStep(ms, B * T, r.ce);
      window = { ms: window.ms + ms, tokens: window.tokens + B * T };
      const tps = window.tokens / (window.ms / 1000); // training time only: evaluation and checkpoints are not in it
      opts.onStep?.({ step, steps: c.steps, loss: r.loss, ce: r.ce, tokensPerS: tps, lr });
      if (logged) {
        losses.push(r.loss);
        const deviceMemory = await session.memory();
        metrics.write({ step, time: new Date().toISOString(), lr, loss: r.loss, ce: r.ce, balance_loss: r.balance_loss,
          z_loss: r.z_loss, grad_norm: gradNorm, ...layoutMetrics, tokens_per_s: tps, layers: r.layers.map(round),
          device_memory: deviceMemory, rss_mb: +(process.memoryUsage().rss / 2 ** 20).toFixed(1) });
        if (!opts.onStep)
          log(`step ${step}/${c.steps} loss ${r.loss.toFixed(4)} ce ${r.ce.toFixed(4)} lr ${lr.toExponential(2)} ` +
            `${tps.toFixed(0)} tok/s`);
        window = { ms: 0, tokens: 0 };
      }
      if (c.eval_every > 0 && step % c.eval_every === 0) await evaluate(step);
      if (savesAt(step)) await save(step);
      await new Promise((r) => setImmediate(r)); // let signals (Ctrl-C) and I/O in between steps
      // on the last step there is nothing left to stop: the run finishes as it would have
      if (opts.stop?.requested && step < c.steps) {
        if (!savesAt(step)) await save(step);
        throw new InterruptedError(`interrupted: saved ${join(dir, 'checkpoints', `step-${step}`)}; ` +
          `continue with --resume ${dir}`);
      }
    }
    // the final evaluation runs once: the loop's own evaluation of the last step counts, or one logged before a resume
    const val = c.eval_batches > 0 ? (lastEval?.step === c.steps ? lastEval.ce : await evaluate(c.steps)) : null;
    // a branch from a run's last step trains nothing, but the new directory gets that step's checkpoint
    if (c.steps > start || run.start === 'branch') await save(c.steps);
    const { note, ...totals } = run.totalsSummary();
    const summary = {
      steps: c.steps,
      ...totals,
      val_ce: val,
      best_val_ce: valCes.length > 0 ? minOf(valCes) : null,
      params_total: counts.total,
      params_active_per_token: counts.activePerToken,
      ...provenance(config),
      ...(note ? { note } : {}),
    };
    metrics.summary(summary);
    return { dir, alreadyComplete: false, ...summary, losses };
  } finally {
    try {
      run.close();
    } finally {
      await session.close();
    }
  }
}

/** Rounds the timing fields of layer stats for compact logs. */
function round(s: LayerStats): LayerStats {
  return { ...s, device_compute_ms: s.device_compute_ms.map((x) => +x.toFixed(2)), wait_ms: +s.wait_ms.toFixed(2),
    router_entropy: +s.router_entropy.toFixed(4) };
}
