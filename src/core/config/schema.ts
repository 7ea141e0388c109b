import { z } from 'zod';
import { parseForceRouting } from './force-routing.js';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
const positive = () => z.number().gt(0);
const fraction = () => z.number().min(0).lt(1);

/** The config schema: types, ranges and cross-field rules. Keys mirror DEFAULTS exactly. */
export const ConfigSchema = z
  .strictObject({
    seed: int(0, 2 ** 31 - 1),
    data: z.strictObject({
      dataset: z.string().min(1),
      path: z.string(),
      seq_len: int(2, 4096),
      batch_size: int(1, 65536),
      val_fraction: z.number().gt(0).lt(1),
    }),
    model: z.strictObject({
      d_model: int(1, 8192),
      n_heads: int(1, 256),
      n_layers: int(1, 256),
      d_ff: int(1, 65536),
      dropout: fraction(),
      activation: z.enum(['relu', 'gelu', 'swiglu']),
      switch_every: int(1, 256),
      first_dense_layers: int(0, 256),
      vocab_size: int(0, 1 << 22),
      head_dim: int(0, 4096),
      n_kv_heads: int(0, 256),
    }),
    moe: z.strictObject({
      n_experts: int(1, 4096),
      top_k: int(1, 16),
      d_ff_expert: int(0, 65536),
      shared_experts: int(0, 64),
      capacity_factor: positive(),
      eval_capacity_factor: positive(),
      min_capacity: int(1),
      drop_tokens: z.boolean(),
      drop_policy: z.enum(['position', 'random', 'priority']),
      router_jitter: fraction(),
      balance_loss_coef: z.number().min(0),
      z_loss_coef: z.number().min(0),
      scale_by_prob: z.boolean(),
      init_scale: positive(),
      force_routing: z.string(),
      router: z.enum(['learned', 'hash']),
      score: z.enum(['softmax', 'sigmoid']),
      norm_topk: z.boolean(),
      topk_scaling: positive(),
      balance: z.enum(['aux_loss', 'seq_aux_loss', 'aux_free', 'none']),
      bias_update_rate: z.number().min(0),
      route_groups: int(0, 4096),
      route_group_topk: int(0, 4096),
    }),
    parallel: z.strictObject({
      layout: z.enum(['coordinator', 'spmd']),
      transport: z.enum(['local', 'threads']),
      devices: int(1, 64),
      backend: z.enum(['wasm', 'cpu', 'webgpu', 'gpujs', 'tensorflow', 'auto']),
      coordinator_backend: z.enum(['wasm', 'cpu', 'tensorflow']),
      payload: z.enum(['shared', 'transfer', 'clone']),
      timeout_ms: int(1),
      microbatches: int(1, 64),
      fault: z.strictObject({
        device: int(-1, 63),
        step: int(0),
        kind: z.enum(['crash', 'hang', 'throw', 'slow']),
        delay_ms: int(0, 600_000),
      }),
    }),
    plan: z.strictObject({
      tp: int(1, 1024),
      pp: int(1, 1024),
      vpp: int(1, 64),
      ep: int(0, 65536),
      etp: int(1, 1024),
      shard: z.enum(['none', 'optimizer', 'full']),
      micro_batch: int(0, 1 << 20),
      global_batch: int(0, 1 << 24),
      recompute: z.enum(['none', 'selective', 'full']),
      precision: z.enum(['bf16', 'fp8']),
      routing: z.enum(['recorded', 'uniform']),
      dispatch: z.enum(['dropless', 'padded']),
      overlap: z.enum(['none', 'a2a']),
    }),
    train: z.strictObject({
      steps: int(0),
      lr: positive(),
      min_lr: z.number().min(0),
      warmup_steps: int(0),
      schedule: z.enum(['cosine', 'constant', 'noam']),
      weight_decay: z.number().min(0),
      beta1: fraction(),
      beta2: fraction(),
      grad_clip: z.number().min(0),
      eval_every: int(0),
      eval_batches: int(1),
      log_every: int(1),
      checkpoint_every: int(0),
    }),
  })
  .superRefine((c, ctx) => {
    const rule = (ok: boolean, path: string[], message: string) => {
      if (!ok) ctx.addIssue({ code: 'custom', path, message });
    };
    rule(c.model.d_model % c.model.n_heads === 0, ['model', 'd_model'],
      `must be divisible by model.n_heads (${c.model.n_heads})`);
    rule(c.moe.n_experts % c.parallel.devices === 0, ['moe', 'n_experts'],
      `must be divisible by parallel.devices (${c.parallel.devices})`);
    rule(c.data.batch_size % c.parallel.devices === 0, ['data', 'batch_size'],
      `must be divisible by parallel.devices (${c.parallel.devices}): each device routes its own group of sequences`);
    rule(c.parallel.devices % c.parallel.microbatches === 0, ['parallel', 'microbatches'],
      `must divide parallel.devices (${c.parallel.devices}): each micro-batch routes whole groups`);
    rule(c.parallel.transport === 'threads' || c.parallel.backend === c.parallel.coordinator_backend, ['parallel', 'backend'],
      `must equal parallel.coordinator_backend (${c.parallel.coordinator_backend}) with parallel.transport local: in-process devices compute on the coordinator's backend; use parallel.transport threads`);
    const spmd = c.parallel.layout === 'spmd';
    rule(!spmd || c.parallel.transport === 'threads', ['parallel', 'transport'],
      `must be threads with parallel.layout spmd: every device is a worker thread that meets the others at barriers`);
    rule(!spmd || c.parallel.microbatches === 1, ['parallel', 'microbatches'],
      `must be 1 with parallel.layout spmd: each device runs its whole shard (micro-batches pipeline the coordinator layout only)`);
    rule(!spmd || c.parallel.backend === c.parallel.coordinator_backend || c.parallel.backend === 'gpujs', ['parallel', 'backend'],
      `must equal parallel.coordinator_backend (${c.parallel.coordinator_backend}) or be gpujs with parallel.layout spmd: a device runs its dense replica and its experts in one thread, on one tfjs backend`);
    rule(c.model.first_dense_layers + c.model.switch_every <= c.model.n_layers, ['model', 'switch_every'],
      `must be <= model.n_layers (${c.model.n_layers})${c.model.first_dense_layers > 0 ? ` - model.first_dense_layers (${c.model.first_dense_layers})` : ''}, or the model has no Switch layer`);
    const heads = c.model.n_kv_heads || c.model.n_heads;
    rule(c.model.n_heads % heads === 0, ['model', 'n_kv_heads'], `must divide model.n_heads (${c.model.n_heads}): each key/value head serves a group of query heads`);
    const force = parseForceRouting(c.moe.force_routing, c.moe.n_experts);
    rule(typeof force !== 'string', ['moe', 'force_routing'], typeof force === 'string' ? force : '');
    rule(c.moe.top_k <= c.moe.n_experts, ['moe', 'top_k'], `must be <= moe.n_experts (${c.moe.n_experts})`);
    const m = c.moe;
    rule(!(m.score === 'sigmoid' && m.top_k === 1 && m.norm_topk), ['moe', 'norm_topk'],
      'must be false with moe.score sigmoid and moe.top_k 1: one normalised gate is always 1 and the router would get no gradient');
    const hash = m.router === 'hash';
    rule(!hash || m.balance === 'none', ['moe', 'balance'], 'must be none with moe.router hash: a hash has no router to balance');
    rule(!hash || m.top_k === 1, ['moe', 'top_k'], 'must be 1 with moe.router hash: the hash names one expert per token');
    rule(!hash || m.force_routing === 'learned', ['moe', 'force_routing'], 'must be learned with moe.router hash: the hash already chooses');
    if (m.route_group_topk > 0) {
      const G = m.route_groups || c.parallel.devices;
      rule(m.n_experts % G === 0, ['moe', 'route_groups'], `must divide moe.n_experts (${m.n_experts}) into equal groups (got ${G}${m.route_groups ? '' : ', one per device'})`);
      rule(m.route_group_topk <= G, ['moe', 'route_group_topk'], `must be <= moe.route_groups (${G})`);
      rule(m.route_group_topk <= m.top_k, ['moe', 'route_group_topk'], `must be <= moe.top_k (${m.top_k}): each kept group gives at least one of the token's experts`);
      rule(m.route_group_topk * (m.n_experts / G) >= m.top_k, ['moe', 'route_group_topk'], `must leave at least moe.top_k (${m.top_k}) experts in the kept groups (${m.n_experts / G} experts a group)`);
      rule(!hash, ['moe', 'route_group_topk'], 'must be 0 with moe.router hash: the hash names the expert');
    }
    rule(c.train.min_lr <= c.train.lr, ['train', 'min_lr'], `must be <= train.lr (${c.train.lr})`);
    rule(c.parallel.fault.device < c.parallel.devices, ['parallel', 'fault', 'device'],
      `must be < parallel.devices (${c.parallel.devices}) or -1 for no fault`);
  });
