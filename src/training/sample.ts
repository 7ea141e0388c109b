import { CharTokenizer } from '../core/data/tokenizer.js';
import { rngFor } from '../core/util/rng.js';
import { loadCheckpoint } from './checkpoint.js';
import { inProcessConfig } from './in-process.js';
import { Session } from '../runtime/coordinator/session.js';
import { maxOf } from '../core/util/extremes.js';

export interface SampleOptions {
  checkpoint: string;
  prompt: string;
  tokens: number;
  temperature: number;
  topK: number;
  seed: number;
}

export interface SampleResult {
  text: string;
  /** prompt characters not in the vocabulary, left out */
  skipped: number;
  step: number;
}

/** Picks a token from logits: temperature, optional top-k, then a seeded categorical draw. */
export function pickToken(logits: Float32Array, temperature: number, topK: number, u: number): number {
  if (temperature === 0) return logits.indexOf(maxOf(logits));
  const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
  const kept = topK > 0 ? order.slice(0, topK) : order;
  const m = logits[kept[0]!]!;
  const w = kept.map((i) => Math.exp((logits[i]! - m) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let r = u * total;
  for (let j = 0; j < kept.length; j++) if ((r -= w[j]!) <= 0) return kept[j]!;
  return kept[kept.length - 1]!;
}

/** Samples text from a checkpoint, in process (one local device holding every expert). */
export async function sample(opts: SampleOptions): Promise<SampleResult> {
  const ckpt = loadCheckpoint(opts.checkpoint);
  const config = inProcessConfig(ckpt.config, [], 'sample');
  const tok = new CharTokenizer(ckpt.vocab);
  const session = await Session.create(config, tok.vocabSize);
  try {
    await session.restore(ckpt.arrays);
    const { ids, skipped } = tok.encodeKnown(opts.prompt);
    const context = Array.from(ids.length > 0 ? ids
      : [tok.encode(tok.chars.includes('\n') ? '\n' : tok.chars[0]!)[0]!]);
    const start = context.length;
    const rng = rngFor(opts.seed, 'sample');
    for (let i = 0; i < opts.tokens; i++) {
      const window = Int32Array.from(context.slice(-config.data.seq_len));
      const { logits } = await session.engine.nextTokenLogits(window, i);
      context.push(pickToken(logits, opts.temperature, opts.topK, rng.uniform()));
    }
    return { text: tok.decode(ids) + tok.decode(context.slice(start)), skipped, step: ckpt.step };
  } finally {
    await session.close();
  }
}
