import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Config } from '../config/defaults.js';
import { ConfigError } from '../config/errors.js';
import { InterruptedError } from './errors.js';
import type { LayerStats } from '../coordinator/layer-stats.js';
import { loadCorpus } from '../data/corpus.js';
import { Dataset } from '../data/batches.js';
import { CharTokenizer } from '../data/tokenizer.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { MetricsWriter } from './metrics.js';
import { learningRate } from './schedule.js';
import { Session } from './session.js';

export interface TrainOptions {
  config: Config;
  /** config name, for the default run directory */
  name: string;
  outDir?: string;
  /** checkpoint directory or run directory to continue from */
  resume?: string;
  log?: (line: string) => void;
  /** called after every step (progress bars) */
  onStep?: (s: StepReport) => void;
  /** set to stop after the current step, save a checkpoint and throw InterruptedError */
  stop?: { requested: boolean };
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
  wall_s: number;
  tokens_per_s: number;
  train_ce: number;
  val_ce: number | null;
  params_total: number;
  params_active_per_token: number;
  /** per logged step, for tests and benchmarks */
  losses: number[];
}

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '');

/** Trains for `train.steps` steps: the whole loop of the CLI's `train` command. */
export async function train(opts: TrainOptions): Promise<TrainSummary> {
  const log = opts.log ?? (() => {});
  const ckpt = opts.resume ? loadCheckpoint(opts.resume) : undefined;
  const config = opts.config;
  if (ckpt && ckpt.config.seed !== config.seed) log(`note: resuming with seed ${config.seed}; the checkpoint used ${ckpt.config.seed}`);
  const corpus = await loadCorpus(config.data.dataset, config.data.path, log);
  const tokenizer = ckpt ? new CharTokenizer(ckpt.vocab) : CharTokenizer.fromText(corpus.text);
  let data: Dataset;
  try {
    data = new Dataset(tokenizer, corpus.text, config.data.val_fraction, config.data.seq_len);
  } catch (e) {
    throw new ConfigError(`data.dataset ${(e as Error).message}`);
  }
  const dir = opts.outDir ?? join('runs', `${opts.name}-${stamp()}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), YAML.stringify(config));
  const metrics = new MetricsWriter(dir);
  const session = await Session.create(config, tokenizer.vocabSize);
  const losses: number[] = [];
  try {
    let start = 0;
    if (ckpt) {
      await session.restore(ckpt.arrays);
      start = ckpt.step;
      log(`resumed from step ${start}`);
    }
    const counts = session.paramCounts();
    log(`corpus ${corpus.name}: ${corpus.text.length} chars, vocab ${tokenizer.vocabSize}; params ${counts.total} (${counts.activePerToken} active per token); out ${dir}`);
    const { batch_size: B, seq_len: T } = config.data;
    const c = config.train;
    const save = async (step: number) => {
      saveCheckpoint(join(dir, 'checkpoints'), { step, config, vocab: tokenizer.chars, rng: { seed: config.seed, step }, arrays: await session.snapshot() });
    };
    const evaluate = async (step: number) => {
      let sum = 0;
      for (let i = 0; i < c.eval_batches; i++) {
        const b = data.batch('val', config.seed, i, B);
        sum += (await session.engine.evaluate(b.x, b.y, B, step)).ce;
      }
      return sum / c.eval_batches;
    };
    const t0 = performance.now();
    let tokens = 0;
    let lastCe = NaN;
    let windowStart = performance.now();
    let windowTokens = 0;
    for (let step = start + 1; step <= c.steps; step++) {
      const b = data.batch('train', config.seed, step, B);
      const r = await session.engine.trainStep(b.x, b.y, B, step);
      if (!Number.isFinite(r.loss)) throw new Error(`loss is ${r.loss} at step ${step}; lower train.lr or raise moe.z_loss_coef`);
      const lr = learningRate(step, c);
      const { gradNorm } = await session.step(lr, step);
      tokens += B * T;
      windowTokens += B * T;
      lastCe = r.ce;
      const tps = windowTokens / ((performance.now() - windowStart) / 1000);
      opts.onStep?.({ step, steps: c.steps, loss: r.loss, ce: r.ce, tokensPerS: tps, lr });
      if (step % c.log_every === 0 || step === c.steps) {
        losses.push(r.loss);
        metrics.write({ step, lr, loss: r.loss, ce: r.ce, balance_loss: r.balance_loss, z_loss: r.z_loss, grad_norm: gradNorm, tokens_per_s: tps, layers: r.layers.map(round) });
        if (!opts.onStep) log(`step ${step}/${c.steps} loss ${r.loss.toFixed(4)} ce ${r.ce.toFixed(4)} lr ${lr.toExponential(2)} ${tps.toFixed(0)} tok/s`);
        windowStart = performance.now();
        windowTokens = 0;
      }
      if (c.eval_every > 0 && step % c.eval_every === 0) {
        const val = await evaluate(step);
        metrics.write({ step, val_ce: val });
        log(`step ${step} val_ce ${val.toFixed(4)}`);
      }
      if (c.checkpoint_every > 0 && step % c.checkpoint_every === 0) await save(step);
      await new Promise((r) => setImmediate(r)); // let signals (Ctrl-C) and I/O in between steps
      if (opts.stop?.requested) {
        await save(step);
        throw new InterruptedError(`interrupted: saved ${join(dir, 'checkpoints', `step-${step}`)}; continue with --resume ${dir}`);
      }
    }
    const wall = (performance.now() - t0) / 1000;
    if (c.steps > start && (c.checkpoint_every === 0 || c.steps % c.checkpoint_every !== 0)) await save(c.steps);
    const val = c.eval_batches > 0 ? await evaluate(c.steps) : null;
    const summary = {
      steps: c.steps, wall_s: wall, tokens_per_s: tokens / Math.max(wall, 1e-9), train_ce: lastCe, val_ce: val,
      params_total: counts.total, params_active_per_token: counts.activePerToken,
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
