import type { RunRecord, RunTotalsRecord } from './manifest.js';

/** Where a run's time goes, in summary.json's terms: training steps, evaluation, writing checkpoints. */
export type TimeKind = 'train' | 'eval' | 'checkpoint';

/** The whole run's figures for summary.json: null where part of the run is unknown (see RunTotals). */
export interface TotalsSummary {
  /** training, evaluation and checkpoint writing together */
  wall_s: number | null;
  /** time in training steps only (forward, backward, optimizer): what tokens_per_s divides by */
  train_s: number | null;
  eval_s: number | null;
  checkpoint_s: number | null;
  tokens_per_s: number | null;
  /** mean training cross-entropy over the last log_every steps */
  train_ce: number | null;
}

/**
 * A run's cumulative figures across all its resumes: time in training steps, in evaluation and in
 * writing checkpoints, the tokens trained, and the last log_every training cross-entropies. Every
 * checkpoint carries them (RunRecord) and a resumed run starts from them, so that summary.json covers
 * the whole run, not the time since the last resume. A run resumed from a checkpoint made before they
 * were recorded has its times and tokens unknown from then on: null, never a figure for part of the run.
 */
export class RunTotals {
  private readonly ms: Record<TimeKind, number>;
  private tokens: number;
  private readonly recent: number[];
  /** the interval being timed now, counted in a record taken during it (a checkpoint's own writing) */
  private current: { kind: TimeKind; since: number } | undefined;

  private constructor(from: RunTotalsRecord | null, recent: number[], private readonly window: number) {
    this.known = from !== null;
    this.ms = { train: from?.train_ms ?? 0, eval: from?.eval_ms ?? 0, checkpoint: from?.checkpoint_ms ?? 0 };
    this.tokens = from?.tokens ?? 0;
    this.recent = recent.slice(-window);
  }

  /** false once part of the run was trained without these being recorded */
  readonly known: boolean;

  /** A new run's: nothing yet. `window` is train.log_every, the steps train_ce averages. */
  static start(window: number): RunTotals {
    return new RunTotals({ train_ms: 0, eval_ms: 0, checkpoint_ms: 0, tokens: 0 }, [], window);
  }

  /** A resumed run's, from its checkpoint's record (undefined: a checkpoint from before they were recorded). */
  static resume(record: RunRecord | undefined, window: number): RunTotals {
    return new RunTotals(record ? record.totals : null, record?.recent_ce ?? [], window);
  }

  /** One training step: its time, its tokens, its cross-entropy. */
  step(ms: number, tokens: number, ce: number): void {
    this.ms.train += ms;
    this.tokens += tokens;
    this.recent.push(ce);
    if (this.recent.length > this.window) this.recent.shift();
  }

  /** Runs `f` and adds its time to `kind`. */
  async time<R>(kind: TimeKind, f: () => Promise<R>): Promise<R> {
    this.current = { kind, since: performance.now() };
    try {
      return await f();
    } finally {
      this.ms[kind] += performance.now() - this.current.since;
      this.current = undefined;
    }
  }

  /** What a checkpoint carries: the totals up to now, the interval being timed included. */
  record(id: string): RunRecord {
    const now = (kind: TimeKind) => this.ms[kind] +
      (this.current?.kind === kind ? performance.now() - this.current.since : 0);
    const totals = this.known ? { train_ms: now('train'), eval_ms: now('eval'), checkpoint_ms: now('checkpoint'),
      tokens: this.tokens } : null;
    return { id, totals, recent_ce: [...this.recent] };
  }

  summary(): TotalsSummary {
    const s = (kind: TimeKind) => (this.known ? this.ms[kind] / 1000 : null);
    const train = s('train');
    return {
      wall_s: this.known ? (this.ms.train + this.ms.eval + this.ms.checkpoint) / 1000 : null,
      train_s: train,
      eval_s: s('eval'),
      checkpoint_s: s('checkpoint'),
      tokens_per_s: train === null ? null : this.tokens / Math.max(train, 1e-9),
      train_ce: this.recent.length > 0 ? this.recent.reduce((a, b) => a + b, 0) / this.recent.length : null,
    };
  }
}
