import { z } from 'zod';
import { fraction, int, positive, section } from './fields.js';

/** The `moe` section: the Switch layers' experts, router, capacity and balancing. */

export const moe = section({
  n_experts: int(1, 4096).default(4).describe('Routed experts per Switch layer, spread evenly over the devices.'),
  top_k: int(1, 16).default(1).describe(
    'Experts per token: 1 (Switch), 2 (GShard), up to 16. All first choices take their slots before any second one.'),
  d_ff_expert: int(0, 65536).default(0).describe(
    "An expert's hidden size; 0: model.d_ff. Smaller is fine-grained experts (DeepSeekMoE)."),
  shared_experts: int(0, 64).default(0).describe(
    'Experts of moe.d_ff_expert that every token passes through beside its routed ones, added unweighted '
    + '(DeepSeekMoE); training computes them with the dense model (on the coordinator, or in every spmd replica), '
    + 'and their parameters count as active.'),
  capacity_factor: positive().default(1.25).describe(
    "Expert capacity C = min(S, max(min_capacity, ⌊top_k · CF · S / n_experts⌋)), S the routing group's tokens: "
    + "a token's k choices share an expert's slots, as in GShard, DeepSpeed, Tutel and fairseq, so balanced top-k "
    + "routing at CF >= 1 drops nothing. Rounded down as Mesh TensorFlow's Switch code does (DeepSpeed and "
    + 'Megatron-Core round up: at most one slot more).'),
  eval_capacity_factor: positive().default(2.0).describe(
    'The capacity factor of evaluation: validation during training, and `switch-sim eval`.'),
  min_capacity: int(1).default(4).describe('Lower bound of C (never above S: a token picks an expert at most once).'),
  drop_tokens: z.boolean().default(true).describe(
    "false: C grows to the busiest expert's load (at most the group), so that no token is dropped."),
  drop_policy: z.enum(['position', 'random', 'priority']).default('position').describe(
    'Who keeps a slot when an expert is over capacity: `position` (earlier tokens first, the paper), `random` '
    + '(seeded), or `priority` (batch-prioritised routing, V-MoE: within each choice rank, the largest routing '
    + 'weight first). A dropped token rides the residual only.'),
  router_jitter: fraction().default(0.01).describe(
    'ε of multiplicative U(1 − ε, 1 + ε) noise on the router input, in training only.'),
  balance_loss_coef: z.number().min(0).default(0.01).describe(
    'α of the balance loss: α · E · Σ f_i · P_i per routing group (`aux_loss`), α · Σ f\'_i · P_i per sequence '
    + '(`seq_aux_loss`).'),
  z_loss_coef: z.number().min(0).default(0.001).describe('Router z-loss coefficient (ST-MoE).'),
  scale_by_prob: z.boolean().default(true).describe(
    "true: each expert's output × its gate; false: × gate / stop_gradient(gate), value 1 (the router still learns "
    + 'through the gradient).'),
  init_scale: positive().default(0.1).describe(
    'Every weight matrix, dense and expert (embeddings aside: std 0.02): truncated normal with std '
    + "√(init_scale / fan_in) (the paper's §2.4)."),
  force_routing: z.string().default('learned').describe(
    "Who chooses each token's experts: `learned` (the router's top-k), `uniform` (token i of a group → expert "
    + '(i + c) mod n_experts for its choice c: perfectly balanced), `zipf:S` (expert e drawn with probability ∝ '
    + "(e + 1)^−S, seeded), or `one-hot:K` (every token's first choice expert K; further choices the router's "
    + "best others). The gates stay the router's scores, so it still learns; capacity and drops apply as usual."),
  router: z.enum(['learned', 'hash']).default('learned').describe(
    '`hash`: Hash layers (Roller et al. 2021): the expert a fixed, seeded function of the token id (a balanced '
    + 'table per layer), no router weights, gate 1.'),
  score: z.enum(['softmax', 'sigmoid']).default('softmax').describe(
    "The router's scores (Megatron-Core's moe_router_score_function): `softmax` (Switch, GShard) or `sigmoid` "
    + "(DeepSeek-V3: each expert's σ(z))."),
  norm_topk: z.boolean().default(true).describe(
    "top_k >= 2: the k gates normalised to sum to 1 (GShard, DeepSeek-V3's norm_topk_prob); false: the scores "
    + "themselves (Megatron-Core's pre-softmax). A top-1 softmax gate is never normalised (Switch's gate is p)."),
  topk_scaling: positive().default(1).describe(
    "The gates × this (Megatron-Core's moe_router_topk_scaling_factor; DeepSeek-V3's routed_scaling_factor 2.5)."),
  balance: z.enum(['aux_loss', 'seq_aux_loss', 'aux_free', 'none']).default('aux_loss').describe(
    "How the load is balanced: `aux_loss` (Switch's loss, per routing group), `seq_aux_loss` (DeepSeek-V3's "
    + 'sequence-wise loss), `aux_free` (DeepSeek-V3: experts chosen by score + b_e, gates from the score alone, '
    + 'and after every step b_e += γ · sign(mean load − load_e) over the step\'s kept tokens, as Megatron-Core\'s '
    + 'get_updated_expert_bias; no loss), or `none`.'),
  bias_update_rate: z.number().min(0).default(1.0e-3).describe(
    "γ of `aux_free` (Megatron-Core's moe_router_bias_update_rate)."),
  route_groups: int(0, 4096).default(0).describe(
    'Device-limited routing (DeepSeek-V2/V3; Megatron-Core\'s moe_router_num_groups): the experts in this many '
    + 'contiguous groups (0: one per device). Read only when moe.route_group_topk > 0.'),
  route_group_topk: int(0, 4096).default(0).describe(
    "Groups a token's experts may come from (Megatron-Core's moe_router_group_topk; 0: any, no limit). A group's "
    + 'score is the sum of its best ⌊top_k / route_group_topk⌋ scores; each token keeps its best '
    + 'route_group_topk groups.'),
}, 'The Switch layers: experts, the router, expert capacity and load balancing.');
