import { rngFor } from '../util/rng.js';
import { CharTokenizer } from './tokenizer.js';

export interface Batch {
  /** [batch, seq_len] token ids, row-major */
  x: Int32Array;
  /** [batch, seq_len] next-token targets */
  y: Int32Array;
  batch: number;
  seqLen: number;
}

/** The encoded corpus split into train and validation parts, and seeded batch sampling. */
export class Dataset {
  readonly train: Int32Array;
  readonly val: Int32Array;

  constructor(readonly tokenizer: CharTokenizer, text: string, valFraction: number, readonly seqLen: number) {
    const ids = tokenizer.encode(text);
    const nVal = Math.floor(ids.length * valFraction);
    this.train = ids.subarray(0, ids.length - nVal);
    this.val = ids.subarray(ids.length - nVal);
    for (const [name, part] of [['train', this.train], ['validation', this.val]] as const) {
      if (part.length <= seqLen + 1) {
        throw new Error(`the ${name} split has ${part.length} tokens, fewer than data.seq_len + 2 (${seqLen + 2}); ` +
          `use a larger corpus or change data.val_fraction`);
      }
    }
  }

  /** Random windows drawn from the stream (seed, split, index): the same index always gives the same batch. */
  batch(split: 'train' | 'val', seed: number, index: number, batchSize: number): Batch {
    const src = split === 'train' ? this.train : this.val;
    const rng = rngFor(seed, `batch-${split}`, index);
    const T = this.seqLen;
    const x = new Int32Array(batchSize * T);
    const y = new Int32Array(batchSize * T);
    for (let b = 0; b < batchSize; b++) {
      const start = rng.int(src.length - T - 1);
      x.set(src.subarray(start, start + T), b * T);
      y.set(src.subarray(start + 1, start + T + 1), b * T);
    }
    return { x, y, batch: batchSize, seqLen: T };
  }
}
