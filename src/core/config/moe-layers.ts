/**
 * Which blocks are mixture-of-experts layers, as other tools write it, in switch-sim's two keys: the first
 * model.first_dense_layers blocks are dense, then block l is a Switch layer when
 * (l − first_dense_layers + 1) is a multiple of model.switch_every (src/core/model/params.ts isSwitchBlock).
 * Hugging Face configs (mlp_only_layers, decoder_sparse_step, first_k_dense_replace) and Megatron-LM's
 * --moe-layer-freq list every layer, so a pattern maps only when some pair of keys gives exactly the same set.
 */
export interface SwitchPattern {
  first_dense_layers: number;
  switch_every: number;
}

/** The pair of keys that makes exactly the blocks with `moe[l]` true Switch layers (smallest period), if any. */
export function switchPattern(moe: boolean[]): SwitchPattern | undefined {
  const n = moe.length;
  const first = moe.indexOf(true);
  if (first < 0) return undefined;
  for (let every = 1; every <= n; every++) {
    const dense = first - every + 1;
    if (dense < 0) break;
    if (moe.every((m, l) => m === (l >= dense && (l - dense + 1) % every === 0))) {
      return { first_dense_layers: dense, switch_every: every };
    }
  }
  return undefined;
}

/**
 * Megatron-LM's --moe-layer-freq (megatron/training/arguments.py `moe_freq_type`): an integer N (block l is
 * MoE when l % N == 0) or a Python list expression such as `([0]*3+[1]*58)` or `[1,0,1,0]`: per block 1 (MoE)
 * or 0 (dense). Returns the per-block flags, or a string saying why the text is not one.
 */
export function parseLayerFreq(text: string, layers: number): boolean[] | string {
  const t = text.replace(/\s+/g, '');
  if (/^\d+$/.test(t)) {
    const every = Number(t);
    if (every < 1) return 'must be an integer >= 1 or a list of 0 and 1';
    return Array.from({ length: layers }, (_, l) => l % every === 0);
  }
  const body = t.startsWith('(') && t.endsWith(')') ? t.slice(1, -1) : t;
  const out: boolean[] = [];
  for (const term of body.split('+')) {
    const m = /^\[([01](?:,[01])*)\](?:\*(\d+))?$/.exec(term);
    if (!m) return 'must be an integer or a list of 0 and 1 such as ([0]*3+[1]*58)';
    const items = m[1]!.split(',').map((v) => v === '1');
    for (let k = 0; k < Number(m[2] ?? 1); k++) out.push(...items);
  }
  if (out.length !== layers) return `must list one entry per block (model.n_layers ${layers}; it lists ${out.length})`;
  return out;
}
