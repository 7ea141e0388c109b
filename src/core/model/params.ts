import type { Config } from '../config/defaults.js';
import { rngFor } from '../util/rng.js';
import { expertFf } from './trainable.js';

/** A named parameter, stored as a flat Float32Array (the optimizer and checkpoints work on these). */
export interface Param {
  shape: number[];
  data: Float32Array;
}
export type ParamSet = Map<string, Param>;

export const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Paper §2.4: truncated normal with std = sqrt(init_scale / fan_in), from its own named random stream. */
export function truncNormalParam(shape: number[], scale: number, seed: number, name: string): Param {
  const rng = rngFor(seed, `init:${name}`);
  const std = Math.sqrt(scale / shape[0]!);
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.truncatedNormal(std);
  return { shape, data };
}

export const filled = (shape: number[], value: number): Param => ({
  shape, data: new Float32Array(size(shape)).fill(value),
});

/**
 * Is block l's FFN a Switch layer? After `first_dense_layers` dense blocks (DeepSeek's first k), every
 * `switch_every`-th block: 1, every block; 2, every other block (1, 3, 5, ... as in the paper).
 */
export function isSwitchBlock(config: Config, l: number): boolean {
  const first = config.model.first_dense_layers;
  return l >= first && (l - first + 1) % config.model.switch_every === 0;
}

/** The coordinator's parameters: embeddings, attention, layer norms, routers, dense FFNs, LM head. */
export function initCoordinatorParams(config: Config, vocabSize: number): ParamSet {
  const { d_model: d, d_ff: dff, n_layers } = config.model;
  const s = config.moe.init_scale;
  const seed = config.seed;
  const p: ParamSet = new Map();
  const w = (name: string, shape: number[]) => p.set(name, truncNormalParam(shape, s, seed, name));
  // embeddings have fan-in 1 in the paper's rule: std sqrt(0.1) would swamp the residual stream, so use 0.02
  p.set('wte', truncNormalParam([vocabSize, d], 0.02 ** 2 * vocabSize, seed, 'wte'));
  p.set('wpe', truncNormalParam([config.data.seq_len, d], 0.02 ** 2 * config.data.seq_len, seed, 'wpe'));
  for (let l = 0; l < n_layers; l++) {
    const h = `h.${l}`;
    p.set(`${h}.ln1.g`, filled([d], 1));
    p.set(`${h}.ln1.b`, filled([d], 0));
    w(`${h}.attn.w_qkv`, [d, 3 * d]);
    p.set(`${h}.attn.b_qkv`, filled([3 * d], 0));
    w(`${h}.attn.w_o`, [d, d]);
    p.set(`${h}.attn.b_o`, filled([d], 0));
    p.set(`${h}.ln2.g`, filled([d], 1));
    p.set(`${h}.ln2.b`, filled([d], 0));
    if (isSwitchBlock(config, l)) {
      if (config.moe.router === 'learned') w(`${h}.router.w`, [d, config.moe.n_experts]);
      // aux-free balancing's per-expert bias: routing state beside the router, moved by the load, never by a gradient
      if (config.moe.balance === 'aux_free') p.set(`${h}.router.bias`, filled([config.moe.n_experts], 0));
      // shared experts (DeepSeekMoE): every token's, computed with the dense model, each of d_ff_expert
      const hs = expertFf(config);
      const up = config.model.activation === 'swiglu' ? 2 * hs : hs;
      for (let e = 0; e < config.moe.shared_experts; e++) {
        w(`${h}.shared.${e}.w1`, [d, up]);
        p.set(`${h}.shared.${e}.b1`, filled([up], 0));
        w(`${h}.shared.${e}.w2`, [hs, d]);
        p.set(`${h}.shared.${e}.b2`, filled([d], 0));
      }
    } else {
      const gated = config.model.activation === 'swiglu' ? 2 : 1; // swiglu: gate | up side by side
      w(`${h}.ffn.w1`, [d, gated * dff]);
      p.set(`${h}.ffn.b1`, filled([gated * dff], 0));
      w(`${h}.ffn.w2`, [dff, d]);
      p.set(`${h}.ffn.b2`, filled([d], 0));
    }
  }
  p.set('ln_f.g', filled([d], 1));
  p.set('ln_f.b', filled([d], 0));
  w('lm_head', [d, vocabSize]);
  return p;
}

/** The names and shapes of expert e's parameters in block l (no values drawn). */
export function initExpertShapes(config: Config, block: number, expert: number): Map<string, number[]> {
  const d = config.model.d_model;
  const dff = expertFf(config);
  const up = config.model.activation === 'swiglu' ? 2 * dff : dff; // swiglu: gate | up side by side
  const name = (k: string) => `h.${block}.experts.${expert}.${k}`;
  return new Map([[name('w1'), [d, up]], [name('b1'), [up]], [name('w2'), [dff, d]], [name('b2'), [d]]]);
}

/** Expert e of the Switch layer in block l: initialised from its own stream, whoever owns it. */
export function initExpertParams(config: Config, block: number, expert: number): ParamSet {
  const d = config.model.d_model;
  const dff = expertFf(config);
  const up = config.model.activation === 'swiglu' ? 2 * dff : dff;
  const s = config.moe.init_scale;
  const name = (k: string) => `h.${block}.experts.${expert}.${k}`;
  return new Map([
    [name('w1'), truncNormalParam([d, up], s, config.seed, name('w1'))],
    [name('b1'), filled([up], 0)],
    [name('w2'), truncNormalParam([dff, d], s, config.seed, name('w2'))],
    [name('b2'), filled([d], 0)],
  ]);
}

export const countParams = (params: ParamSet) => [...params.values()].reduce((a, p) => a + p.data.length, 0);

/** Routing state kept with the parameters (checkpoints, replicas) but not trained: aux-free biases. */
export const isRoutingState = (name: string) => name.endsWith('.router.bias');

/** The parameters the optimizer trains (everything but routing state). */
export const trainedNames = (params: ParamSet) => [...params.keys()].filter((n) => !isRoutingState(n));

/**
 * One block's parameters by part, from the config alone (biases and layer-norm gains included, as this model
 * has them).
 */
export interface BlockParams {
  /** two layer norms */
  norms: number;
  /** q, k, v (grouped-query: n_kv_heads key/value heads) and the output projection */
  attention: number;
  /** a dense block's FFN; in a Switch block, the router and the shared experts */
  ffn: number;
  /** a Switch block's routed experts, all of them */
  experts: number;
  /** one routed expert */
  perExpert: number;
}

/** An FFN of hidden size h: two matrices (relu, gelu) or three (swiglu: gate, up, down), with biases. */
export const ffnParams = (config: Config, h: number) => {
  const d = config.model.d_model;
  return config.model.activation === 'swiglu' ? 3 * d * h + 2 * h + d : 2 * d * h + h + d;
};

export function blockParams(config: Config, l: number): BlockParams {
  const m = config.model;
  const d = m.d_model;
  const hd = m.head_dim || d / m.n_heads;
  const kv = m.n_kv_heads || m.n_heads;
  const qkv = (m.n_heads + 2 * kv) * hd;
  const attention = d * qkv + qkv + m.n_heads * hd * d + d;
  const perExpert = ffnParams(config, expertFf(config));
  if (!isSwitchBlock(config, l)) return {
    norms: 4 * d, attention, ffn: ffnParams(config, m.d_ff), experts: 0, perExpert,
  };
  const router = config.moe.router === 'learned' ? d * config.moe.n_experts : 0; // a hash has no weights
  return {
    norms: 4 * d, attention, ffn: router + config.moe.shared_experts * perExpert,
    experts: config.moe.n_experts * perExpert, perExpert,
  };
}

/** Embeddings, the final layer norm and the LM head: wte [V, d], wpe [seq, d], ln_f, lm_head [d, V]. */
export const outerParams = (config: Config, vocabSize: number) => {
  const d = config.model.d_model;
  return { embedding: vocabSize * d + config.data.seq_len * d, head: 2 * d + d * vocabSize };
};

/**
 * Parameter counts from the config alone: everything, and what one token activates (its top-k
 * experts in each Switch layer, every dense weight, the shared experts).
 */
export function configParamCounts(config: Config, vocabSize: number): { total: number; activePerToken: number } {
  const outer = outerParams(config, vocabSize);
  let dense = outer.embedding + outer.head;
  let experts = 0;
  let active = 0;
  for (let l = 0; l < config.model.n_layers; l++) {
    const b = blockParams(config, l);
    dense += b.norms + b.attention + b.ffn;
    experts += b.experts;
    if (b.experts > 0) active += config.moe.top_k * b.perExpert;
  }
  return { total: dense + experts, activePerToken: dense + active };
}
