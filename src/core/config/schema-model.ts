import { z } from 'zod';
import { fraction, int, positive, section } from './fields.js';

/** `seed` and the sections `data`, `model` and `train`: the key, its range, its default, its meaning. */

export const seed = int(0, 2 ** 31 - 1).default(1337).describe(
  'Every random draw of a run (initialisation, batches, router jitter, dropout, the random drop order, forced Zipf '
  + 'routing) comes from a stream named by this seed, its purpose and the step, so runs repeat.');

export const data = section({
  dataset: z.string().min(1).default('moby-dick').describe(
    '`moby-dick` (embedded, installed with npm, no network), `tinyshakespeare` (data.path, else the cache, '
    + 'else a download), or the path of any UTF-8 text of at least 1000 characters.'),
  path: z.string().default('').describe(
    'With data.dataset `tinyshakespeare`: a local copy of it; empty: the cached copy in ~/.cache/switch-sim '
    + '(or $SWITCH_SIM_CACHE), downloaded once. Other datasets ignore it.'),
  seq_len: int(2, 4096).default(64).describe('Context length in tokens (characters).'),
  batch_size: int(1, 65536).default(16).describe(
    'Sequences per step, split evenly over the devices: each device routes its own group of sequences.'),
  val_fraction: z.number().gt(0).lt(1).default(0.1).describe('The tail of the corpus held out for validation.'),
}, 'The corpus and the batches cut from it. Text is tokenised by character.');

export const model = section({
  d_model: int(1, 8192).default(64).describe('Width of the residual stream.'),
  n_heads: int(1, 256).default(4).describe('Attention (query) heads.'),
  n_layers: int(1, 256).default(2).describe('Transformer blocks.'),
  d_ff: int(1, 65536).default(128).describe(
    'Hidden size of the dense FFNs, and of each expert unless moe.d_ff_expert is set.'),
  dropout: fraction().default(0).describe('Dropout on the embeddings and the residual branches, in training only.'),
  activation: z.enum(['relu', 'gelu', 'swiglu']).default('relu').describe(
    'The FFN activation of experts, shared experts and dense FFNs alike; training and simulate support all three. '
    + 'swiglu has three d × d_ff matrices: the gate and up matrices sit side by side in w1 [d, 2·d_ff], '
    + "the gate first, as Megatron-Core's gated linear unit."),
  switch_every: int(1, 256).default(1).describe(
    "After the model.first_dense_layers: 1, every block's FFN is a Switch layer; 2, every other block's (the paper)."),
  first_dense_layers: int(0, 256).default(0).describe(
    "Leading blocks with a dense FFN (DeepSeek's first k dense layers); then every model.switch_every-th block "
    + 'is a Switch layer.'),
  vocab_size: int(0, 1 << 22).default(0).describe(
    "0: the data's vocabulary. Training accepts only 0 or that size; other sizes are for `switch-sim simulate`."),
  head_dim: int(0, 4096).default(0).describe(
    '0: d_model / n_heads. Training accepts only 0 or that value; other sizes are for `switch-sim simulate`.'),
  n_kv_heads: int(0, 256).default(0).describe(
    '0: n_heads. Fewer is grouped-query attention, which only `switch-sim simulate` reads so far: '
    + 'training accepts only 0 or n_heads.'),
  q_lora_rank: int(0, 65536).default(0).describe(
    "Multi-head latent attention (DeepSeek-V2/V3, Megatron-Core's q_lora_rank): queries through a d_model → "
    + 'q_lora_rank down-projection and its RMSNorm; 0: one d_model → n_heads · (qk_nope_head_dim + '
    + 'qk_rope_head_dim) projection. Only `switch-sim simulate` reads MLA.'),
  kv_lora_rank: int(0, 65536).default(0).describe(
    "MLA's compressed key/value width (kv_lora_rank); 0: standard attention (the other MLA keys must be 0)."),
  qk_nope_head_dim: int(0, 4096).default(0).describe(
    "MLA: each head's query/key width without rotary embedding (HF qk_nope_head_dim, Megatron's qk_head_dim)."),
  qk_rope_head_dim: int(0, 4096).default(0).describe(
    "MLA: the rotary part of each query/key head; the key's is one per token, shared by every head "
    + "(Megatron's qk_pos_emb_head_dim)."),
  v_head_dim: int(0, 4096).default(0).describe("MLA: each head's value width."),
  mtp_layers: int(0, 16).default(0).describe(
    "DeepSeek-V3's multi-token prediction (Megatron-Core's mtp_num_layers, HF num_nextn_predict_layers): this many "
    + 'extra blocks after the last, each with a 2·d_model → d_model projection, sharing the embedding and the '
    + 'output head. Only `switch-sim simulate` reads it.'),
}, 'The transformer: a decoder-only language model whose FFNs are Switch (mixture-of-experts) layers.');

export const train = section({
  steps: int(0).default(200).describe('Optimizer steps.'),
  lr: positive().default(3e-3).describe('Peak learning rate, reached after the warmup.'),
  min_lr: z.number().min(0).default(3e-4).describe('Where the cosine schedule ends.'),
  warmup_steps: int(0).default(20).describe(
    'Linear warmup from 0 to train.lr over this many steps (noam: its peak step).'),
  schedule: z.enum(['cosine', 'constant', 'noam']).default('cosine').describe(
    'After the warmup: `cosine` down to train.min_lr at train.steps, `constant` at train.lr, '
    + 'or `noam` (lr · min(t / warmup, √(warmup / t)), Vaswani et al.).'),
  weight_decay: z.number().min(0).default(0.1).describe(
    'AdamW decoupled weight decay, on matrices only (not biases or layer-norm gains).'),
  beta1: fraction().default(0.9).describe("AdamW β1: the decay of the gradient's running mean."),
  beta2: fraction().default(0.99).describe("AdamW β2: the decay of the squared gradient's running mean."),
  grad_clip: z.number().min(0).default(1.0).describe(
    'Clips the global gradient norm, over the coordinator and every device together, to this (0: off).'),
  eval_every: int(0).default(50).describe(
    'Validation cross-entropy every this many steps (0: only at the end; the last step is always evaluated).'),
  eval_batches: int(1).default(4).describe('Validation batches per evaluation.'),
  log_every: int(1).default(10).describe(
    'A metrics.jsonl line (and a log line) every this many steps and at the last step.'),
  checkpoint_every: int(0).default(100).describe(
    'A checkpoint every this many steps (0: only at the end; the last step, and an interrupted one, always get one).'),
}, 'The optimizer (AdamW), its learning-rate schedule, and the cadence of logs, evaluations and checkpoints.');
