import { RECOMPUTE_MODULES } from '../../core/config/schema-parallel.js';
import { divisors, type Plan, type SearchContext } from './context.js';
import { pipelineShapes } from './pipelines.js';

/** Values a plan key is narrowed to (`--space`), or pinned to (`--set`, `--megatron-args`: one value). */
export type Narrowing = Map<string, unknown[]>;

/**
 * One dimension of the search: the plan keys it sets together and the patches it tries. Each is one entry of
 * DIMENSIONS; a new plan key is a new entry (or a new key of one). Ranges are what could ever fit the cluster
 * (divisors of its GPUs, at most the heads, the experts, …); which of them Megatron-Core accepts is rules.ts's.
 */
export interface Dimension {
  name: string;
  keys: (keyof Plan)[];
  /** the patches to try, given the context and what the user narrowed */
  values: (ctx: SearchContext, narrow: Narrowing) => Partial<Plan>[];
}

const powersOfTwo = (max: number) => Array.from({ length: Math.floor(Math.log2(max)) + 1 }, (_, i) => 2 ** i);

const listed = <T>(narrow: Narrowing, key: keyof Plan): T[] | undefined => narrow.get(`plan.${key}`) as T[] | undefined;

/** A key of its own: the narrowed values, else `range`. */
const simple = <K extends keyof Plan>(key: K, range: (ctx: SearchContext) => Plan[K][]): Dimension => ({
  name: key, keys: [key],
  values: (ctx, narrow) => (listed<Plan[K]>(narrow, key) ?? range(ctx)).map((v) => ({ [key]: v }) as Partial<Plan>),
});

const sameList = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** A row of a table of patches; `extra` rows are tried only when one of the keys is narrowed (`--space`). */
type Row = Partial<Plan> & { extra?: true };

/**
 * Keys tried together from a table of patches: without narrowing, the rows that are not extra; with it, every row
 * whose values the narrowed keys list, and where none does, the narrowed values themselves (each unnarrowed key at
 * `fill`'s value).
 */
const together = (name: string, keys: (keyof Plan)[], table: (ctx: SearchContext) => Row[],
  fill: (row: Partial<Plan>, ctx: SearchContext) => Partial<Plan>): Dimension => ({
  name, keys,
  values: (ctx, narrow) => {
    const narrowed = keys.some((k) => narrow.has(`plan.${k}`));
    const rows: Partial<Plan>[] = table(ctx).filter((row) => (narrowed || !row.extra) && keys.every((k) => !narrow.has(`plan.${k}`)
      || listed<unknown>(narrow, k)!.some((v) => sameList(v, row[k])))).map(({ extra, ...row }) => (void extra, row));
    if (rows.length > 0 || !narrowed) return rows;
    let out: Partial<Plan>[] = [{}];
    for (const k of keys) {
      const vs = listed<unknown>(narrow, k);
      if (vs) out = out.flatMap((row) => vs.map((v) => ({ ...row, [k]: v })));
    }
    return out.map((row) => fill(row, ctx));
  },
});

/**
 * Selective recompute module sets: those worth trying (Megatron-Core's recipes: Qwen3 on H100, DeepSeek-V3's memory
 * table; the whole MoE layer), and extra ones tried only when narrowed: the attention core (flash attention never
 * stores its scores, so it saves nothing), the experts' activation alone.
 */
const RECOMPUTE: { modules: (typeof RECOMPUTE_MODULES)[number][]; when?: (ctx: SearchContext) => boolean; extra?: true }[] = [
  { modules: ['layernorm', 'moe_act'] },
  { modules: ['layernorm', 'mla_up_proj', 'moe_act'], when: (ctx) => ctx.mla },
  { modules: ['moe'] },
  { modules: ['core_attn'], extra: true },
  { modules: ['moe_act'], extra: true },
];

/**
 * In the order the search nests them: the parallel sizes, then the pipeline split (the splits of one pp next to each
 * other: they share their all-to-all, which traffic.ts then computes once), the rest of what decides the memory (the
 * bound is checked once its keys are chosen), the overlap and the dispatcher last.
 */
export const DIMENSIONS: Dimension[] = [
  together('tensor', ['tp', 'etp'], (ctx) => divisors(ctx.gpus, Math.min(ctx.heads, ctx.gpusPerNode))
    .flatMap((tp) => (tp === 1 ? [{ tp, etp: 1 }] : [{ tp, etp: tp }, { tp, etp: 1 }])), (row) => ({ tp: 1, etp: row.tp ?? 1, ...row })),
  simple('cp', (ctx) => divisors(ctx.gpus, Math.max(1, ctx.seq / 4096))),
  simple('ep', (ctx) => divisors(ctx.gpus, ctx.experts)),
  simple('micro_batch', (ctx) => powersOfTwo(Math.max(1, 16384 / ctx.seq))),
  {
    name: 'pipeline',
    keys: ['pp', 'vpp', 'decoder_first_pipeline_num_layers', 'decoder_last_pipeline_num_layers',
      'account_for_embedding_in_pipeline_split', 'account_for_loss_in_pipeline_split'],
    values: (ctx, narrow) => pipelineShapes({
      layers: ctx.layers,
      pp: listed<number>(narrow, 'pp') ?? divisors(ctx.gpus, ctx.layers),
      vpp: listed<number>(narrow, 'vpp') ?? Array.from({ length: Math.floor((ctx.layers + 2) / 2) }, (_, i) => i + 1),
      first: listed(narrow, 'decoder_first_pipeline_num_layers'),
      last: listed(narrow, 'decoder_last_pipeline_num_layers'),
      embedding: listed(narrow, 'account_for_embedding_in_pipeline_split'),
      loss: listed(narrow, 'account_for_loss_in_pipeline_split'),
    }),
  },
  simple('shard', () => ['none', 'optimizer', 'full']),
  together('recompute', ['recompute', 'recompute_modules'], (ctx) => [
    { recompute: 'none', recompute_modules: [] }, { recompute: 'full', recompute_modules: [] },
    ...RECOMPUTE.filter((r) => r.when?.(ctx) ?? true)
      .map((r): Row => ({ recompute: 'selective', recompute_modules: r.modules, ...(r.extra ? { extra: true } : {}) })),
  ], (row) => ({ recompute: (row.recompute_modules?.length ?? 0) > 0 ? 'selective' : 'none', recompute_modules: [], ...row })),
  // the config's own choice unless narrowed: the training precision, the dispatch mode
  simple('precision', (ctx) => [ctx.config.plan.precision]),
  simple('dispatch', (ctx) => [ctx.config.plan.dispatch]),
  simple('redundant_experts', (ctx) => [ctx.config.plan.redundant_experts]),
  simple('overlap', () => ['none', 'a2a']),
  together('dispatcher', ['dispatcher', 'dispatch_fwd_dtype'], () => [
    { dispatcher: 'alltoall', dispatch_fwd_dtype: 'bf16' }, { dispatcher: 'allgather', dispatch_fwd_dtype: 'bf16' },
    { dispatcher: 'flex', dispatch_fwd_dtype: 'bf16' }, { dispatcher: 'flex', dispatch_fwd_dtype: 'mxfp8', extra: true },
  ], (row, ctx) => ({ dispatcher: ctx.config.plan.dispatcher, dispatch_fwd_dtype: 'bf16', ...row })),
];

/** The plan keys the search can narrow (`--space`), each with the dimension that sets it. */
export const SEARCH_KEYS: Map<string, Dimension> = new Map(DIMENSIONS.flatMap((d) => d.keys.map((k) => [`plan.${k}`, d] as const)));
