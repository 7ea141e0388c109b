import { z } from 'zod';
import { parseForceRouting } from './force-routing.js';
import { data, model, seed, train } from './schema-model.js';
import { moe } from './schema-moe.js';
import { parallel, plan } from './schema-parallel.js';
import { PLAN_RULES } from './rules-plan.js';

/**
 * The one config schema: every key's type, range, default and description (the section files), and the
 * rules between keys (below). The `Config` type, DEFAULTS (this parsed from {}), validation and the
 * reference page docs/config.md all derive from it.
 */
const Sections = z.strictObject({ seed, data, model, moe, parallel, plan, train });
type Shape = z.output<typeof Sections>;

/** A rule between keys: the key an error names, the rule as the reference states it, and the check. */
export interface Rule {
  key: string;
  doc: string;
  /** the broken rule as one line (`must …`, the value follows), or undefined when it holds */
  broken: (c: Shape) => string | undefined;
}

const unless = (ok: boolean, message: string) => (ok ? undefined : message);
/** G of device-limited routing: moe.route_groups, or one group per device. */
const routeGroups = (c: Shape) => c.moe.route_groups || c.parallel.devices;
/** A rule of device-limited routing, checked only when moe.route_group_topk > 0. */
const grouped = (check: (c: Shape, G: number) => string | undefined) => (c: Shape) =>
  c.moe.route_group_topk > 0 ? check(c, routeGroups(c)) : undefined;

/** In the order they are checked: the first broken rule is the one reported. */
export const RULES: Rule[] = [
  { key: 'model.d_model', doc: 'must be divisible by model.n_heads', broken: ({ model: m }) =>
    unless(m.d_model % m.n_heads === 0, `must be divisible by model.n_heads (${m.n_heads})`) },
  { key: 'moe.n_experts', doc: 'must be divisible by parallel.devices', broken: (c) =>
    unless(c.moe.n_experts % c.parallel.devices === 0,
      `must be divisible by parallel.devices (${c.parallel.devices})`) },
  { key: 'data.batch_size', doc: 'must be divisible by parallel.devices', broken: (c) =>
    unless(c.data.batch_size % c.parallel.devices === 0,
      `must be divisible by parallel.devices (${c.parallel.devices}): each device routes its own group of sequences`) },
  { key: 'parallel.microbatches', doc: 'must divide parallel.devices', broken: ({ parallel: p }) =>
    unless(p.devices % p.microbatches === 0,
      `must divide parallel.devices (${p.devices}): each micro-batch routes whole groups`) },
  { key: 'parallel.backend', doc: 'must equal parallel.coordinator_backend with parallel.transport local',
    broken: ({ parallel: p }) => unless(p.transport === 'threads' || p.backend === p.coordinator_backend,
      `must equal parallel.coordinator_backend (${p.coordinator_backend}) with parallel.transport local: in-process `
      + "devices compute on the coordinator's backend; use parallel.transport threads") },
  { key: 'parallel.transport', doc: 'must be threads with parallel.layout spmd', broken: ({ parallel: p }) =>
    unless(p.layout !== 'spmd' || p.transport === 'threads',
      'must be threads with parallel.layout spmd: every device is a worker thread that meets the others at barriers') },
  { key: 'parallel.microbatches', doc: 'must be 1 with parallel.layout spmd', broken: ({ parallel: p }) =>
    unless(p.layout !== 'spmd' || p.microbatches === 1, 'must be 1 with parallel.layout spmd: each device runs its '
      + 'whole shard (micro-batches pipeline the coordinator layout only)') },
  { key: 'parallel.backend', doc: 'must equal parallel.coordinator_backend or be gpujs with parallel.layout spmd',
    broken: ({ parallel: p }) =>
      unless(p.layout !== 'spmd' || p.backend === p.coordinator_backend || p.backend === 'gpujs',
        `must equal parallel.coordinator_backend (${p.coordinator_backend}) or be gpujs with parallel.layout spmd: `
        + 'a device runs its dense replica and its experts in one thread, on one tfjs backend') },
  { key: 'model.switch_every', doc: 'must be <= model.n_layers - model.first_dense_layers', broken: ({ model: m }) =>
    unless(m.first_dense_layers + m.switch_every <= m.n_layers, `must be <= model.n_layers (${m.n_layers})`
      + `${m.first_dense_layers > 0 ? ` - model.first_dense_layers (${m.first_dense_layers})` : ''}, `
      + 'or the model has no Switch layer') },
  { key: 'model.n_kv_heads', doc: 'must divide model.n_heads', broken: ({ model: m }) =>
    unless(m.n_heads % (m.n_kv_heads || m.n_heads) === 0,
      `must divide model.n_heads (${m.n_heads}): each key/value head serves a group of query heads`) },
  { key: 'moe.force_routing', doc: 'must be learned, uniform, zipf:S or one-hot:K with K below moe.n_experts',
    broken: ({ moe: m }) => {
      const force = parseForceRouting(m.force_routing, m.n_experts);
      return typeof force === 'string' ? force : undefined;
    } },
  { key: 'moe.top_k', doc: 'must be <= moe.n_experts', broken: ({ moe: m }) =>
    unless(m.top_k <= m.n_experts, `must be <= moe.n_experts (${m.n_experts})`) },
  { key: 'moe.norm_topk', doc: 'must be false with moe.score sigmoid and moe.top_k 1', broken: ({ moe: m }) =>
    unless(!(m.score === 'sigmoid' && m.top_k === 1 && m.norm_topk), 'must be false with moe.score sigmoid and '
      + 'moe.top_k 1: one normalised gate is always 1 and the router would get no gradient') },
  { key: 'moe.balance', doc: 'must be none with moe.router hash', broken: ({ moe: m }) =>
    unless(m.router !== 'hash' || m.balance === 'none',
      'must be none with moe.router hash: a hash has no router to balance') },
  { key: 'moe.top_k', doc: 'must be 1 with moe.router hash', broken: ({ moe: m }) =>
    unless(m.router !== 'hash' || m.top_k === 1,
      'must be 1 with moe.router hash: the hash names one expert per token') },
  { key: 'moe.force_routing', doc: 'must be learned with moe.router hash', broken: ({ moe: m }) =>
    unless(m.router !== 'hash' || m.force_routing === 'learned',
      'must be learned with moe.router hash: the hash already chooses') },
  { key: 'moe.route_groups', doc: 'must divide moe.n_experts when moe.route_group_topk > 0',
    broken: grouped(({ moe: m }, G) => unless(m.n_experts % G === 0,
      `must divide moe.n_experts (${m.n_experts}) into equal groups`)) },
  { key: 'moe.route_group_topk', doc: 'must be <= moe.route_groups (0: parallel.devices)',
    broken: grouped(({ moe: m }, G) => unless(m.route_group_topk <= G, `must be <= moe.route_groups (${G})`)) },
  { key: 'moe.route_group_topk', doc: 'must be <= moe.top_k', broken: grouped(({ moe: m }) =>
    unless(m.route_group_topk <= m.top_k,
      `must be <= moe.top_k (${m.top_k}): each kept group gives at least one of the token's experts`)) },
  { key: 'moe.route_group_topk', doc: 'must leave at least moe.top_k experts in the kept groups',
    broken: grouped(({ moe: m }, G) => unless(m.route_group_topk * (m.n_experts / G) >= m.top_k,
      `must leave at least moe.top_k (${m.top_k}) experts in the kept groups (${m.n_experts / G} experts a group)`)) },
  { key: 'moe.route_group_topk', doc: 'must be 0 with moe.router hash', broken: grouped(({ moe: m }) =>
    unless(m.router !== 'hash', 'must be 0 with moe.router hash: the hash names the expert')) },
  { key: 'train.min_lr', doc: 'must be <= train.lr', broken: ({ train: t }) =>
    unless(t.min_lr <= t.lr, `must be <= train.lr (${t.lr})`) },
  { key: 'parallel.fault.device', doc: 'must be < parallel.devices (or -1)', broken: ({ parallel: p }) =>
    unless(p.fault.device < p.devices, `must be < parallel.devices (${p.devices}) or -1 for no fault`) },
  ...PLAN_RULES,
];

/** The config schema: types, ranges and defaults per key, then the rules between keys. */
export const ConfigSchema = Sections.superRefine((c, ctx) => {
  for (const rule of RULES) {
    const message = rule.broken(c);
    if (message !== undefined) ctx.addIssue({ code: 'custom', path: rule.key.split('.'), message });
  }
});
