/**
 * Built-in defaults: the first of the three config layers (defaults → file → --set).
 * Every key a config file or `--set` may name appears here; anything else is rejected.
 */
export const DEFAULTS = {
  seed: 1337,
  data: {
    dataset: 'moby-dick', // 'moby-dick' (embedded, offline), 'tinyshakespeare', or a path to a UTF-8 text file
    path: '', // optional explicit file for 'tinyshakespeare'
    seq_len: 64,
    batch_size: 16,
    val_fraction: 0.1,
  },
  model: {
    d_model: 64,
    n_heads: 4,
    n_layers: 2,
    d_ff: 128,
    dropout: 0,
    activation: 'relu' as 'relu' | 'gelu' | 'swiglu', // swiglu: three d × d_ff matrices (projections only, for now)
    switch_every: 1,
    first_dense_layers: 0, // leading blocks with a dense FFN; then every switch_every-th block is a Switch layer
    vocab_size: 0, // 0: the data's vocabulary
    head_dim: 0, // 0: d_model / n_heads
    n_kv_heads: 0, // 0: n_heads; fewer is grouped-query attention (projections only, for now)
  },
  moe: {
    n_experts: 4,
    top_k: 1,
    d_ff_expert: 0, // 0: model.d_ff; smaller is fine-grained experts (DeepSeekMoE)
    shared_experts: 0, // always-on experts of d_ff_expert each (DeepSeekMoE; projections only, for now)
    capacity_factor: 1.25,
    eval_capacity_factor: 2.0,
    min_capacity: 4,
    drop_tokens: true,
    drop_policy: 'position' as 'position' | 'random' | 'priority',
    router_jitter: 0.01,
    balance_loss_coef: 0.01,
    z_loss_coef: 0.001,
    scale_by_prob: true,
    init_scale: 0.1,
    force_routing: 'learned', // 'learned', 'uniform', 'zipf:S' or 'one-hot:K': forced expert choices (gates stay the router's)
    router: 'learned' as 'learned' | 'hash', // hash: Hash layers (Roller et al. 2021), the expert a seeded function of the token id
    score: 'softmax' as 'softmax' | 'sigmoid', // Megatron-Core moe_router_score_function; sigmoid as DeepSeek-V3
    norm_topk: true, // top-k ≥ 2: the chosen gates normalised to sum to 1 (GShard, DeepSeek-V3); top-1 softmax is never (Switch)
    topk_scaling: 1, // gates × this (Megatron-Core moe_router_topk_scaling_factor; DeepSeek-V3 uses 2.5)
    balance: 'aux_loss' as 'aux_loss' | 'seq_aux_loss' | 'aux_free' | 'none', // aux_free: DeepSeek-V3's per-expert routing bias
    bias_update_rate: 1.0e-3, // γ of aux_free: b_e += γ · sign(mean load − load_e) after every step
    route_groups: 0, // device-limited routing: experts in this many groups (0: one per device)
    route_group_topk: 0, // groups a token's experts may come from (0: any, no limit)
  },
  parallel: {
    layout: 'coordinator' as 'coordinator' | 'spmd', // spmd: every device runs the dense model on its shard (the paper's layout)
    transport: 'threads' as 'local' | 'threads',
    devices: 2,
    backend: 'wasm' as 'wasm' | 'cpu' | 'webgpu' | 'gpujs' | 'tensorflow' | 'auto', // the devices' compute backend; auto: the fastest the probe finds
    coordinator_backend: 'wasm' as 'wasm' | 'cpu' | 'tensorflow', // its kernels read tensors synchronously: no WebGPU in Node
    payload: 'shared' as 'shared' | 'transfer' | 'clone',
    timeout_ms: 60000,
    microbatches: 1,
    fault: {
      device: -1, // -1: no fault injected
      step: 0,
      kind: 'crash' as 'crash' | 'hang' | 'throw' | 'slow',
      delay_ms: 20, // kind 'slow': extra ms on every exchange of that device from fault.step on
    },
  },
  /**
   * How `switch-sim simulate` lays the model out on a cluster, in Megatron-Core's names (train ignores it):
   * dense layers on N = tp·pp·dp GPUs, experts on N = etp·ep·pp·edp (parallel folding).
   */
  plan: {
    tp: 1,
    pp: 1,
    vpp: 1,
    ep: 0, // 0: as many as fit (the largest that divides moe.n_experts and N / (pp·etp))
    etp: 1,
    shard: 'none' as 'none' | 'optimizer' | 'full', // plain DP; distributed optimizer (ZeRO-1); FSDP (ZeRO-3)
    micro_batch: 0, // sequences per micro-batch and data-parallel rank; 0: global_batch / dp (one micro-batch)
    global_batch: 0, // sequences per step; 0: data.batch_size
    recompute: 'none' as 'none' | 'selective' | 'full',
    precision: 'bf16' as 'bf16' | 'fp8',
    routing: 'recorded' as 'recorded' | 'uniform', // a run's own routing, or force-balanced (as most published benchmarks)
    dispatch: 'dropless' as 'dropless' | 'padded', // kept rows only, or every expert's C slots (GShard, DeepSpeed)
    overlap: 'none' as 'none' | 'a2a', // a2a: expert all-to-all hidden behind other micro-batches' compute
  },
  train: {
    steps: 200,
    lr: 3e-3,
    min_lr: 3e-4,
    warmup_steps: 20,
    schedule: 'cosine' as 'cosine' | 'constant' | 'noam',
    weight_decay: 0.1,
    beta1: 0.9,
    beta2: 0.99,
    grad_clip: 1.0,
    eval_every: 50,
    eval_batches: 4,
    log_every: 10,
    checkpoint_every: 100,
  },
};

export type Config = typeof DEFAULTS;
