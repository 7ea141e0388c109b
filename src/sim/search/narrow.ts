import YAML from 'yaml';
import { ConfigError, show } from '../../core/config/errors.js';
import { describe } from '../../core/config/load.js';
import { readFlags } from '../../core/config/megatron-flags.js';
import { plan as planSchema } from '../../core/config/schema-parallel.js';
import type { Plan } from './context.js';
import { SEARCH_KEYS, type Narrowing } from './dimensions.js';

/** The plan keys a Megatron-LM flag names (a flag given pins them to the value the flags set). */
const FLAG_KEYS: Record<string, string[]> = {
  '--tensor-model-parallel-size': ['tp'], '--expert-tensor-parallel-size': ['etp'], '--pipeline-model-parallel-size': ['pp'],
  '--num-virtual-stages-per-pipeline-rank': ['vpp'], '--num-layers-per-virtual-pipeline-stage': ['vpp'],
  '--decoder-first-pipeline-num-layers': ['decoder_first_pipeline_num_layers'],
  '--decoder-last-pipeline-num-layers': ['decoder_last_pipeline_num_layers'],
  '--account-for-embedding-in-pipeline-split': ['account_for_embedding_in_pipeline_split'],
  '--account-for-loss-in-pipeline-split': ['account_for_loss_in_pipeline_split'],
  '--context-parallel-size': ['cp'], '--expert-model-parallel-size': ['ep'], '--micro-batch-size': ['micro_batch'],
  '--use-distributed-optimizer': ['shard'], '--use-megatron-fsdp': ['shard'], '--use-torch-fsdp2': ['shard'],
  '--recompute-granularity': ['recompute', 'recompute_modules'], '--recompute-activations': ['recompute'],
  '--recompute-modules': ['recompute_modules'], '--moe-token-dispatcher-type': ['dispatcher'],
  '--moe-dispatch-fwd-dtype': ['dispatch_fwd_dtype'], '--overlap-moe-expert-parallel-comm': ['overlap'],
  '--moe-pad-expert-input-to-capacity': ['dispatch'], '--fp8-format': ['precision'], '--bf16': ['precision'],
};

/** Splits `a,b,[c,d]` at the commas outside brackets. */
function items(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let word = '';
  for (const ch of text) {
    if (ch === ',' && depth === 0) {
      out.push(word.trim());
      word = '';
      continue;
    }
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    word += ch;
  }
  out.push(word.trim());
  return out;
}

/** `--space plan.key=v1,v2` (repeatable): each a searched plan key and values its schema accepts. */
export function parseSpace(specs: string[]): Narrowing {
  const narrow: Narrowing = new Map();
  const keys = [...SEARCH_KEYS.keys()].join('|');
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const key = eq > 0 ? spec.slice(0, eq).trim() : spec;
    if (eq <= 0 || eq === spec.length - 1) throw new ConfigError(`--space must look like plan.key=v1,v2,... (got ${show(spec)})`);
    if (!SEARCH_KEYS.has(key)) throw new ConfigError(`--space must name a searched plan key: ${keys} (got ${show(key)})`);
    if (narrow.has(key)) throw new ConfigError(`--space ${key} must be given once (got it twice)`);
    const name = key.slice('plan.'.length) as keyof Plan;
    const values = items(spec.slice(eq + 1)).map((raw) => {
      let v: unknown;
      try {
        v = raw === '' ? raw : YAML.parse(raw);
      } catch {
        v = raw;
      }
      const parsed = planSchema.unwrap().shape[name].safeParse(v);
      if (!parsed.success) {
        throw new ConfigError(`--space ${describe(parsed.error, v as Record<string, unknown>, key).message.replace(/^config error: /, '')}`);
      }
      return parsed.data;
    });
    narrow.set(key, values);
  }
  return narrow;
}

/** The searched plan keys that `--set` assignments and a `--megatron-args` line name. */
export function pinnedKeys(sets: string[], megatron: string | undefined): string[] {
  const keys = new Set(sets.map((s) => s.slice(0, Math.max(0, s.indexOf('='))).trim()).filter((k) => SEARCH_KEYS.has(k)));
  if (megatron !== undefined) {
    for (const flag of readFlags(megatron).values.keys()) for (const k of FLAG_KEYS[flag] ?? []) keys.add(`plan.${k}`);
  }
  return [...keys];
}

/**
 * The search's narrowing: `--space` lists, and each pinned key at the config's value. A key both pinned and
 * narrowed is refused in one line.
 */
export function narrowing(space: Narrowing, pinned: string[], plan: Plan): Narrowing {
  const out: Narrowing = new Map(space);
  for (const key of pinned) {
    if (space.has(key)) throw new ConfigError(`--space ${key} must not narrow a key --set or --megatron-args pins (got ${show(space.get(key))})`);
    out.set(key, [plan[key.slice('plan.'.length) as keyof Plan]]);
  }
  return out;
}
