import { z } from 'zod';
import { int, section } from './fields.js';

/** Megatron-Core's selective recompute modules that switch-sim models (TransformerConfig's allowed_modules). */
export const RECOMPUTE_MODULES = ['core_attn', 'layernorm', 'moe_act', 'mla_up_proj', 'mlp', 'moe', 'shared_experts'] as const;

/** The sections `parallel` (how train runs on simulated devices) and `plan` (how simulate lays out a cluster). */

const fault = section({
  device: int(-1, 63).default(-1).describe('The device that misbehaves; -1: no fault injected.'),
  step: int(0).default(0).describe('The training step at which it does (kind `slow`: from which on).'),
  kind: z.enum(['crash', 'hang', 'throw', 'slow']).default('crash').describe(
    '`crash` (the device ends), `hang` (it never answers: the step fails after parallel.timeout_ms) or `throw` '
    + '(that request fails), on its first exchange of the step (the forward pass of Switch layer 0); or `slow`.'),
  delay_ms: int(0, 600_000).default(20).describe(
    'Kind `slow`: the device takes this many ms longer on every exchange from parallel.fault.step on.'),
}, 'Fault injection, a test and profiling hook: one device crashes, hangs, throws or straggles at a given step.');

export const parallel = section({
  layout: z.enum(['coordinator', 'spmd']).default('coordinator').describe(
    '`coordinator`: the main thread runs the dense model and the devices run the experts; `spmd`: every device '
    + 'runs the dense model on its shard of the batch and owns its experts (the paper\'s layout).'),
  transport: z.enum(['local', 'threads']).default('threads').describe(
    '`threads`: a worker thread per device; `local`: the devices in-process (a reference).'),
  devices: int(1, 64).default(2).describe(
    'Simulated GPUs; also the number of routing groups (each device routes its own sequences).'),
  backend: z.enum(['wasm', 'cpu', 'webgpu', 'gpujs', 'tensorflow', 'auto']).default('wasm').describe(
    "The devices' compute backend: `wasm` (tfjs XNNPACK with SIMD), `cpu`, `webgpu`, `gpujs`, `tensorflow` "
    + '(needs an optional tfjs-node package), or `auto` (the fastest a probe finds).'),
  coordinator_backend: z.enum(['wasm', 'cpu', 'tensorflow']).default('wasm').describe(
    "The coordinator's backend: its kernels read tensors synchronously, which WebGPU in Node cannot."),
  payload: z.enum(['shared', 'transfer', 'clone']).default('shared').describe(
    'How slot data reaches a device thread: `shared` (zero-copy SharedArrayBuffer), `transfer` (a copy per '
    + 'device, moved with a transfer list), or `clone` (structured clone).'),
  timeout_ms: int(1).default(60000).describe(
    'A device that does not answer within this many ms fails the step (startup waits at least 60 s).'),
  microbatches: int(1, 64).default(1).describe(
    'Splits each step into this many micro-batches of whole routing groups, pipelined over the devices; '
    + "the losses equal one batch's (jitter and dropout are drawn per sequence)."),
  kernels: z.enum(['fused', 'tfjs']).default('fused').describe(
    '`fused`: on the wasm backend, the model\'s layers (matmuls with their bias, activation and residual, '
    + 'layer norm, embedding, attention, the Switch combine and router losses, cross-entropy, the experts) run '
    + 'as hand-written WebAssembly SIMD kernels on its heap, with hand-written backward passes; `tfjs`: every '
    + 'layer as tfjs operations and autodiff (the reference; the cpu and GPU backends always run it). Both '
    + 'compute the same numbers up to float rounding.'),
  fault,
}, 'How train runs the model on simulated devices: the layout, the threads, the backends, fault injection.');

export const plan = section({
  tp: int(1, 1024).default(1).describe('Tensor-parallel size of the dense layers.'),
  pp: int(1, 1024).default(1).describe('Pipeline-parallel stages.'),
  vpp: int(1, 64).default(1).describe('Virtual pipeline stages per rank (interleaved schedule).'),
  decoder_first_pipeline_num_layers: int(0, 4096).default(0).describe(
    "Blocks on the first pipeline rank (Megatron-Core's num_layers_in_first_pipeline_stage); 0: not set. With "
    + 'plan.vpp, a multiple of it; the ranks between first and last take equal shares of the rest.'),
  decoder_last_pipeline_num_layers: int(0, 4096).default(0).describe(
    "Blocks on the last pipeline rank (Megatron-Core's num_layers_in_last_pipeline_stage); 0: not set."),
  account_for_embedding_in_pipeline_split: z.boolean().default(false).describe(
    'The embedding takes one block\'s slot of the split, in the first virtual stage of the first rank '
    + "(Megatron-Core's account_for_embedding_in_pipeline_split)."),
  account_for_loss_in_pipeline_split: z.boolean().default(false).describe(
    'The output layer and loss take one block\'s slot of the split, in the last virtual stage of the last rank '
    + "(Megatron-Core's account_for_loss_in_pipeline_split). Without first/last counts or these slots, blocks "
    + 'that pp · vpp does not divide go one each to the first stages in layer order (Megatron-Core refuses).'),
  cp: int(1, 1024).default(1).describe(
    "Context-parallel size (Megatron-Core's context_parallel_size): each sequence split over cp GPUs in 2 · cp "
    + 'chunks, GPU r taking chunks r and 2·cp − 1 − r (causal load balance); dense layers on tp · cp · pp · dp GPUs.'),
  ep: int(0, 65536).default(0).describe(
    'Expert-parallel size; 0: as many as fit (the largest that divides moe.n_experts and N / (pp · etp)).'),
  etp: int(1, 1024).default(1).describe('Tensor-parallel size of each expert.'),
  shard: z.enum(['none', 'optimizer', 'full']).default('none').describe(
    'Over the data-parallel group: `none` (plain data parallel), `optimizer` (distributed optimizer, ZeRO-1), '
    + 'or `full` (FSDP, ZeRO-3).'),
  micro_batch: int(0, 1 << 20).default(0).describe(
    'Sequences per micro-batch and data-parallel rank; 0: global_batch / dp (one micro-batch).'),
  global_batch: int(0, 1 << 24).default(0).describe('Sequences per step; 0: data.batch_size.'),
  recompute: z.enum(['none', 'selective', 'full']).default('none').describe(
    "Activation recomputation: `selective` (the modules of plan.recompute_modules again; none listed: the "
    + "attention core, Megatron-Core's default) or `full` (each block's forward again)."),
  recompute_modules: z.array(z.enum(RECOMPUTE_MODULES)).default([]).describe(
    "With plan.recompute selective, Megatron-Core's recompute_modules: `core_attn` (the attention core), "
    + '`layernorm` (the two norms of a block), `moe_act` (the experts\' activation), `mla_up_proj` (MLA\'s '
    + 'up-projections and RoPE), `mlp` (dense FFNs), `moe` (whole Switch layers), `shared_experts`.'),
  precision: z.enum(['bf16', 'fp8']).default('bf16').describe("`fp8`: GEMMs at the cluster's gpu.tflops_fp8."),
  routing: z.enum(['recorded', 'uniform']).default('recorded').describe(
    "The routing projected: a replayed run's own (`recorded`) or force-balanced (`uniform`, as most published "
    + 'benchmarks).'),
  dispatch: z.enum(['dropless', 'padded']).default('dropless').describe(
    "`dropless`: only the kept rows travel and compute; `padded`: every expert's C slots (GShard, DeepSpeed)."),
  dispatcher: z.enum(['alltoall', 'allgather', 'flex']).default('alltoall').describe(
    "Megatron-Core's moe_token_dispatcher_type: `alltoall` (each (token, expert) row to its expert's GPU over "
    + 'ep), `allgather` (every token to every GPU of tp · ep, each keeps its experts\' rows), or `flex` (one '
    + 'fused dispatch over tp · ep, DeepEP: a token crosses to a node once).'),
  dispatch_fwd_dtype: z.enum(['bf16', 'mxfp8']).default('bf16').describe(
    "Megatron-Core's moe_dispatch_fwd_dtype: `mxfp8` sends the forward dispatch as FP8 with a one-byte scale "
    + 'per 32 values (DeepEP\'s FP8 dispatch); the combine and the backward stay bf16.'),
  overlap: z.enum(['none', 'a2a']).default('none').describe(
    "`a2a`: the expert all-to-all hidden behind another micro-batch's dense compute (needs two or more "
    + 'micro-batches).'),
  redundant_experts: int(0, 4096).default(0).describe(
    "simulate --run: extra copies of the hottest experts, placed as DeepSeek's EPLB places them from the run's "
    + 'recorded loads (one more copy at a time to the expert with the most load per copy, then the copies packed '
    + 'onto the GPUs of each EP group, heaviest first, each onto the least-loaded GPU with a free slot); each '
    + 'expert\'s tokens split evenly over its copies. moe.n_experts + this must be divisible by plan.ep.'),
}, 'How `switch-sim simulate` lays the model out on a cluster, in Megatron-Core\'s names and parallel folding: '
  + 'dense layers on N = tp · cp · pp · dp GPUs, experts on N = etp · ep · pp · edp. simulate checks the plan against '
  + 'the model and the cluster when it runs (e.g. tp must divide model.n_heads); training ignores this section.');
