import { ConfigError, show } from './errors.js';
import { switchPattern } from './moe-layers.js';

/**
 * A Hugging Face `config.json` as a config file: its shape keys as model.* and moe.* (what the keys mean per
 * family: the configuration_*.py classes and decoder-layer constructors of huggingface/transformers models
 * mixtral, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3, olmoe). Keys that change nothing switch-sim
 * models (rope, norms' epsilon, dropout, token ids, loss coefficients, weight quantization) are left out and
 * listed; keys that change the model in a way switch-sim cannot represent are refused by name.
 * Every family's MLP is SiLU-gated (model.activation swiglu) and routes without capacity (moe.drop_tokens false).
 */
type Json = Record<string, unknown>;
type Family = 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'deepseek_v2' | 'deepseek_v3' | 'olmoe';

export interface HfMapping {
  /** the model and moe sections, layered like a config file's */
  tree: { model: Json; moe: Json };
  family: Family;
  /** config.json keys that change nothing switch-sim models */
  ignored: string[];
}

const ARCHITECTURES: Record<string, Family> = {
  MixtralForCausalLM: 'mixtral', Qwen2MoeForCausalLM: 'qwen2_moe', Qwen3MoeForCausalLM: 'qwen3_moe',
  DeepseekV2ForCausalLM: 'deepseek_v2', DeepseekV3ForCausalLM: 'deepseek_v3', OlmoeForCausalLM: 'olmoe',
};
const FAMILIES = new Set<string>(Object.values(ARCHITECTURES));

const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A parsed config file is a Hugging Face config when it names an architecture or a model type. */
export const isHfConfig = (v: unknown): v is Json => isJson(v) && ('architectures' in v || 'model_type' in v);

/** Reads keys of one config.json, remembering which it read; errors name the file and the key. */
function reader(json: Json, file: string) {
  const read = new Set(['architectures', 'model_type']);
  const refuse = (key: string, rule: string): never => {
    throw new ConfigError(`${file}: ${key} ${rule} (got ${show(json[key])})`);
  };
  /** the value, undefined when absent or null (transformers' "not set") */
  const opt = (key: string): unknown => {
    read.add(key);
    return json[key] ?? undefined;
  };
  const optInt = (key: string): number | undefined => {
    const v = opt(key);
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0)) refuse(key, 'must be an integer >= 0');
    return v as number | undefined;
  };
  const int = (...keys: string[]): number => {
    for (const key of keys) {
      const v = optInt(key);
      if (v !== undefined) return v;
    }
    return refuse(keys[0]!, `is needed to map a ${json.model_type ?? 'model'} config`);
  };
  return { read, refuse, opt, optInt, int };
}

/** The family of a config: its model_type, else the class its architectures name. */
function familyOf(json: Json, file: string): Family {
  const type = json.model_type;
  if (typeof type === 'string' && FAMILIES.has(type)) return type as Family;
  const names: unknown[] = Array.isArray(json.architectures) ? json.architectures : [];
  const arch = names.find((a) => typeof a === 'string' && a in ARCHITECTURES);
  if (arch) return ARCHITECTURES[arch as string]!;
  const named = 'architectures' in json ? 'architectures' : 'model_type';
  throw new ConfigError(`${file}: ${named} must name a mixture-of-experts model switch-sim maps `
    + `(${Object.keys(ARCHITECTURES).join(', ')}) (got ${show(json[named])})`);
}

/** Maps a Hugging Face config.json (parsed) to switch-sim's model and moe sections; refusals are one line. */
export function hfConfig(json: Json, file: string): HfMapping {
  const family = familyOf(json, file);
  const r = reader(json, file);
  const heads = r.int('num_attention_heads');
  const hidden = r.int('hidden_size');
  const layers = r.int('num_hidden_layers');
  const kv = r.optInt('num_key_value_heads');
  const model: Json = {
    n_layers: layers, d_model: hidden, n_heads: heads, n_kv_heads: kv === undefined || kv === heads ? 0 : kv,
    activation: 'swiglu',
  };
  const moe: Json = { top_k: r.int('num_experts_per_tok'), drop_tokens: false };
  const vocab = r.optInt('vocab_size');
  if (vocab !== undefined) model.vocab_size = vocab;
  const act = r.opt('hidden_act');
  if (act !== undefined && act !== 'silu') {
    r.refuse('hidden_act', 'must be silu: switch-sim maps these SiLU-gated MLPs as swiglu');
  }
  if (r.opt('tie_word_embeddings') === true) {
    r.refuse('tie_word_embeddings', 'must be false: switch-sim keeps the embedding and the output layer apart');
  }
  const isMoe = (rule: (l: number) => boolean) => Array.from({ length: layers }, (_, l) => rule(l));
  let moeLayers = isMoe(() => true);
  let patternKey = 'num_hidden_layers';
  if (family === 'mixtral' || family === 'olmoe') {
    // one FFN width, every block a mixture of experts
    model.d_ff = r.int('intermediate_size');
    moe.n_experts = r.int(...(family === 'mixtral' ? ['num_local_experts', 'num_experts'] : ['num_experts']));
    // Mixtral always renormalises its top-k softmax weights; OLMoE as norm_topk_prob says
    moe.norm_topk = family === 'mixtral' || r.opt('norm_topk_prob') === true;
    if (family === 'mixtral' && r.opt('sliding_window') !== undefined) {
      r.refuse('sliding_window', 'must be null: switch-sim models full causal attention');
    }
  } else if (family === 'qwen2_moe' || family === 'qwen3_moe') {
    moe.n_experts = r.int('num_experts', 'num_local_experts');
    moe.d_ff_expert = r.int('moe_intermediate_size');
    moe.norm_topk = r.opt('norm_topk_prob') === true;
    if (r.opt('use_sliding_window') === true) {
      r.refuse('use_sliding_window', 'must be false: switch-sim models full causal attention');
    }
    // block l is sparse when l is not in mlp_only_layers and (l + 1) % decoder_sparse_step == 0 (modeling_qwen*_moe.py)
    const step = r.optInt('decoder_sparse_step') ?? 1;
    const only = r.opt('mlp_only_layers') ?? [];
    if (!Array.isArray(only) || !only.every(Number.isInteger)) {
      r.refuse('mlp_only_layers', 'must be a list of block indices');
    }
    moeLayers = isMoe((l) => step > 0 && (l + 1) % step === 0 && !(only as number[]).includes(l));
    patternKey = (only as number[]).length > 0 ? 'mlp_only_layers' : 'decoder_sparse_step';
    const shared = family === 'qwen2_moe' ? r.optInt('shared_expert_intermediate_size') ?? 0 : 0;
    // one shared SwiGLU of width k·w has the FLOPs and parameters of k experts of width w; its sigmoid gate
    // (one d_model vector a block) is not modelled
    if (shared % (moe.d_ff_expert as number) !== 0) {
      r.refuse('shared_expert_intermediate_size', `must be a multiple of moe_intermediate_size (${moe.d_ff_expert})`);
    }
    moe.shared_experts = shared / (moe.d_ff_expert as number);
  } else {
    mapDeepseek(r, model, moe);
    moeLayers = isMoe((l) => l >= (r.optInt('first_k_dense_replace') ?? 0));
    patternKey = 'first_k_dense_replace';
    const freq = r.optInt('moe_layer_freq');
    if (freq !== undefined && freq !== 1) {
      r.refuse('moe_layer_freq', 'must be 1: switch-sim maps DeepSeek MoE layers every block');
    }
  }
  const dense = moeLayers.some((m) => !m);
  if (family !== 'mixtral' && family !== 'olmoe') {
    const dff = r.optInt('intermediate_size');
    if (dff !== undefined) model.d_ff = dff;
    else if (dense) r.int('intermediate_size');
  }
  const pattern = switchPattern(moeLayers);
  if (!pattern) {
    r.refuse(patternKey, 'must leave MoE blocks that switch-sim can place (first dense blocks, then every k-th)');
  }
  Object.assign(model, pattern);
  if (family === 'qwen3_moe' || family === 'mixtral') model.head_dim = r.optInt('head_dim') ?? hidden / heads;
  else if (family !== 'deepseek_v2' && family !== 'deepseek_v3') model.head_dim = hidden / heads;
  const ignored = Object.keys(json).filter((k) => !r.read.has(k));
  return { tree: { model, moe }, family, ignored };
}

/** DeepSeek-V2/V3: multi-head latent attention, shared experts, router (modeling_deepseek_v3.py, DeepseekV3Config). */
function mapDeepseek(r: ReturnType<typeof reader>, model: Json, moe: Json): void {
  moe.n_experts = r.int('n_routed_experts', 'num_local_experts');
  moe.d_ff_expert = r.int('moe_intermediate_size');
  moe.shared_experts = r.optInt('n_shared_experts') ?? 0;
  Object.assign(model, {
    head_dim: 0, q_lora_rank: r.optInt('q_lora_rank') ?? 0, kv_lora_rank: r.int('kv_lora_rank'),
    qk_nope_head_dim: r.int('qk_nope_head_dim'), qk_rope_head_dim: r.int('qk_rope_head_dim'),
    v_head_dim: r.int('v_head_dim'),
    mtp_layers: r.optInt('num_nextn_predict_layers') ?? 0,
  });
  const score = r.opt('scoring_func') ?? 'softmax';
  if (score !== 'softmax' && score !== 'sigmoid') r.refuse('scoring_func', 'must be softmax or sigmoid');
  moe.score = score;
  moe.norm_topk = r.opt('norm_topk_prob') === true;
  const scaling = r.opt('routed_scaling_factor');
  if (scaling !== undefined) moe.topk_scaling = scaling;
  const method = r.opt('topk_method') ?? 'greedy';
  if (method !== 'greedy' && method !== 'group_limited_greedy' && method !== 'noaux_tc') {
    r.refuse('topk_method', 'must be greedy, group_limited_greedy or noaux_tc');
  }
  // noaux_tc: experts chosen by score + a per-expert bias moved by the load (aux-loss-free balancing)
  if (method === 'noaux_tc') moe.balance = 'aux_free';
  // Group-limited routing keeps topk_group of n_group groups. Departure: V2's group_limited_greedy scores a
  // group by its best expert; switch-sim (as Megatron-Core) by the sum of its best top_k / topk_group.
  const groups = r.optInt('n_group');
  const keep = r.optInt('topk_group');
  if (method !== 'greedy' && groups !== undefined && keep !== undefined) {
    Object.assign(moe, { route_groups: groups, route_group_topk: keep });
  }
}
