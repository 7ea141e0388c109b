import { ConfigError } from '../core/config/errors.js';
import { mergeLayerStats, type LayerStats } from '../runtime/coordinator/layer-stats.js';
import { Dataset } from '../core/data/batches.js';
import { loadCorpus } from '../core/data/corpus.js';
import { CharTokenizer } from '../core/data/tokenizer.js';
import { loadCheckpoint, resolveCheckpointDir } from './checkpoint.js';
import { inProcessConfig } from './in-process.js';
import { Session } from '../runtime/coordinator/session.js';

export interface EvalOptions {
  checkpoint: string;
  /** `key=value` overrides on the checkpoint's config, e.g. moe.eval_capacity_factor=1.0 */
  sets?: string[];
  /** batches to score (default: the config's train.eval_batches) */
  batches?: number;
  split?: 'val' | 'train';
}

/** How one Switch layer routed the scored batches. */
export interface EvalLayer {
  drop_fraction: number;
  /** busiest expert's kept token-choices (all k, after capacity drops) over the mean, summed over the batches */
  load_max_over_mean: number;
  /** the same for first choices before drops: the router's own imbalance, whatever the capacity */
  load_max_over_mean_first: number;
  router_entropy: number;
}

export interface EvalReport {
  checkpoint: string;
  step: number;
  split: 'val' | 'train';
  batches: number;
  /** the evaluation capacity factor the batches were routed with */
  capacity_factor: number;
  ce: number;
  /** mean over Switch layers */
  drop_fraction: number;
  layers: EvalLayer[];
}

/**
 * Scores a checkpoint: cross-entropy and per-layer routing on `batches` batches of a split, exactly
 * as the trainer evaluates (same batches, same step, eval capacity factor), so that a trained model
 * can be scored at other capacity factors without retraining.
 */
export async function evaluateCheckpoint(opts: EvalOptions): Promise<EvalReport> {
  const dir = resolveCheckpointDir(opts.checkpoint);
  const ckpt = loadCheckpoint(dir);
  const config = inProcessConfig(ckpt.config, opts.sets);
  const split = opts.split ?? 'val';
  const batches = opts.batches ?? config.train.eval_batches;
  const corpus = await loadCorpus(config.data.dataset, config.data.path);
  const tokenizer = new CharTokenizer(ckpt.vocab);
  let data: Dataset;
  try {
    data = new Dataset(tokenizer, corpus.text, config.data.val_fraction, config.data.seq_len);
  } catch (e) {
    throw new ConfigError(`data.dataset ${(e as Error).message} (the checkpoint's vocabulary must cover the text)`);
  }
  const session = await Session.create(config, tokenizer.vocabSize);
  try {
    await session.restore(ckpt.arrays);
    const B = config.data.batch_size;
    let ce = 0;
    const perLayer: LayerStats[][] = [];
    for (let i = 0; i < batches; i++) {
      const b = data.batch(split, config.seed, i, B);
      const r = await session.engine.evaluate(b.x, b.y, B, ckpt.step);
      ce += r.ce / batches;
      r.layers.forEach((l, k) => (perLayer[k] ??= []).push(l));
    }
    const layers = perLayer.map(summarise);
    return {
      checkpoint: dir, step: ckpt.step, split, batches, capacity_factor: config.moe.eval_capacity_factor, ce,
      drop_fraction: layers.reduce((a, l) => a + l.drop_fraction, 0) / Math.max(1, layers.length), layers,
    };
  } finally {
    await session.close();
  }
}

function summarise(parts: LayerStats[]): EvalLayer {
  const m = mergeLayerStats(parts);
  return {
    drop_fraction: m.drop_fraction,
    load_max_over_mean: m.load_max_over_mean,
    load_max_over_mean_first: m.load_max_over_mean_first,
    router_entropy: m.router_entropy,
  };
}
