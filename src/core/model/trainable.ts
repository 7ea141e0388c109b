import type { Config } from '../config/defaults.js';
import { ConfigError } from '../config/errors.js';
import type { Activation } from './layers.js';

/**
 * What `train` (and eval, profile, sweeps) can run of a config. Some keys describe real recipes for
 * `switch-sim simulate` only, until training learns them: each is refused with one line naming it.
 * `vocabSize` is the data's vocabulary, when known.
 */
export function assertTrainable(config: Config, vocabSize?: number): void {
  const m = config.model;
  const refuse = (key: string, rule: string, got: unknown) => {
    throw new ConfigError(`${key} ${rule} in training: only switch-sim simulate reads it so far (got ` +
      `${JSON.stringify(got)})`);
  };
  if (m.head_dim !== 0 && m.head_dim * m.n_heads !== m.d_model) refuse(
    'model.head_dim', `must be 0 or model.d_model / model.n_heads (${m.d_model / m.n_heads})`, m.head_dim,
  );
  if (m.n_kv_heads !== 0 && m.n_kv_heads !== m.n_heads) refuse(
    'model.n_kv_heads', `must be 0 or model.n_heads (${m.n_heads})`, m.n_kv_heads,
  );
  if (m.kv_lora_rank !== 0) {
    refuse('model.kv_lora_rank', 'must be 0 (standard attention, not multi-head latent attention)', m.kv_lora_rank);
  }
  if (m.mtp_layers !== 0) refuse('model.mtp_layers', 'must be 0 (no multi-token prediction)', m.mtp_layers);
  if (vocabSize !== undefined && m.vocab_size !== 0 && m.vocab_size !== vocabSize) refuse(
    'model.vocab_size', `must be 0 or the data's vocabulary (${vocabSize})`, m.vocab_size,
  );
}

/** The FFN activation training computes. */
export const trainedActivation = (config: Config): Activation => config.model.activation;

/** An expert's hidden size: moe.d_ff_expert, or model.d_ff when it is 0. */
export const expertFf = (config: Config) => config.moe.d_ff_expert || config.model.d_ff;
