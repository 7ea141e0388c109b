import tf from '../../core/util/tfjs.cjs';
import type { Config } from '../../core/config/defaults.js';
import type { StageContext } from '../../core/model/stages.js';
import { rngFor } from '../../core/util/rng.js';
import type { RouteMode } from '../../core/router/route.js';

/**
 * One (micro-)batch's StageContext for one step: the tokens, and every random draw (dropout masks,
 * router jitter) made once per site. Each sequence's rows come from the stream (seed, site, step,
 * its index in the whole batch), so a micro-batch draws exactly the numbers its sequences would get
 * in one big batch: splitting a step into micro-batches changes no loss.
 */
export class StepContext implements StageContext {
  readonly tokens: tf.Tensor1D;
  readonly targets?: tf.Tensor1D;
  private readonly cache = new Map<string, tf.Tensor>();

  readonly train: boolean;

  constructor(
    readonly config: Config,
    readonly batch: number,
    readonly mode: RouteMode,
    readonly step: number,
    /** the token ids, [batch · T] */
    readonly ids: Int32Array,
    targets?: Int32Array,
    /** micro-batch index (the devices keep activations per micro-batch) */
    readonly micro = 0,
    /** index of this micro-batch's first sequence in the step's batch */
    readonly firstSeq = 0,
  ) {
    this.train = mode === 'train';
    this.tokens = tf.tensor1d(ids, 'int32');
    if (targets) this.targets = tf.tensor1d(targets, 'int32');
  }

  /**
   * One site's draws, [batch, T·cols]: one stream per sequence. Each value is `lo + span · u` (jitter) or,
   * with `keep` set, 0 where u < keep.p and keep.scale elsewhere (a dropout mask); two plain loops, not a
   * per-value callback, which cost V8 more than the draws.
   */
  private draw(key: string, shape: [number, number], lo: number, span: number, keep?: { p: number; scale: number }):
    tf.Tensor {
    let t = this.cache.get(key);
    if (!t) {
      const data = new Float32Array(shape[0] * shape[1]);
      const perSeq = data.length / this.batch;
      for (let b = 0; b < this.batch; b++) {
        const rng = rngFor(this.config.seed, key, this.step, this.firstSeq + b);
        const end = (b + 1) * perSeq;
        if (keep) for (let i = b * perSeq; i < end; i++) data[i] = rng.uniform() < keep.p ? 0 : keep.scale;
        else for (let i = b * perSeq; i < end; i++) data[i] = lo + span * rng.uniform();
      }
      t = tf.keep(tf.tensor2d(data, shape));
      this.cache.set(key, t);
    }
    return t;
  }

  /** Inverted-dropout mask: 0 with probability p, else 1/(1−p). */
  mask(site: string, shape: [number, number]): tf.Tensor | undefined {
    const p = this.config.model.dropout;
    if (!this.train || p === 0) return undefined;
    return this.draw(`dropout:${site}`, shape, 0, 0, { p, scale: 1 / (1 - p) });
  }

  /** Multiplicative router jitter u ~ U(1−ε, 1+ε) (paper §2.4), training only. */
  jitter(block: number, shape: [number, number]): tf.Tensor | undefined {
    const eps = this.config.moe.router_jitter;
    if (!this.train || eps === 0) return undefined;
    // 1 − ε + 2ε·u, as (1 − ε) + (2ε)·u: JavaScript evaluates it in that order, so these are the same bits
    return this.draw(`jitter:${block}`, shape, 1 - eps, 2 * eps);
  }

  dispose(): void {
    tf.dispose([...this.cache.values(), this.tokens, ...(this.targets ? [this.targets] : [])]);
    this.cache.clear();
  }
}
