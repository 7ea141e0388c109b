import type { Config } from './defaults.js';
import { ConfigError } from './errors.js';

/**
 * A config's plan, sequence length and batches as one line of Megatron-LM flags (the inverse of
 * megatron-args.ts: parsing the line over the same model gives the same config). Each value maps exactly:
 * plan.shard optimizer is the distributed optimizer, full is Megatron-FSDP sharding parameters, gradients and
 * optimizer state; plan.recompute full is uniform recompute of one block at a time; bf16 and fp8 (E4M3) run
 * with bf16 parameters.
 */
export interface ResolvedPlan {
  /** plan.ep and plan.micro_batch as a cluster resolves them, where the config leaves them 0 */
  ep?: number;
  micro_batch?: number;
}

const flag = (name: string, value?: string | number) => (value === undefined ? name : `${name} ${value}`);

/** The flags of `config`'s plan; a plan with no Megatron-LM spelling is refused in one line. */
export function megatronLine(config: Config, resolved: ResolvedPlan = {}): string {
  const p = config.plan;
  const ep = p.ep || resolved.ep;
  const micro = p.micro_batch || resolved.micro_batch;
  if (!ep) throw new ConfigError('plan.ep must be set for Megatron-LM flags: 0 (as many as fit) '
    + 'needs a cluster (got 0)');
  if (!micro) {
    throw new ConfigError('plan.micro_batch must be set for Megatron-LM flags: 0 (one micro-batch) '
      + 'needs a cluster (got 0)');
  }
  if (p.dispatch === 'padded' && !config.moe.drop_tokens) {
    throw new ConfigError('plan.dispatch padded needs moe.drop_tokens true for Megatron-LM '
      + 'flags: Megatron-Core pads to '
      + 'the capacity --moe-expert-capacity-factor sets, which drops (got "padded")');
  }
  if (p.redundant_experts > 0) {
    throw new ConfigError('plan.redundant_experts must be 0 for Megatron-LM flags: Megatron-Core places each '
      + `expert once; redundant copies are DeepSeek's EPLB, which it does not train with (got ${p.redundant_experts})`);
  }
  const out = [
    flag('--seq-length', config.data.seq_len), flag('--global-batch-size', p.global_batch || config.data.batch_size),
    flag('--micro-batch-size', micro), flag('--bf16'), ...(p.precision === 'fp8' ? [flag('--fp8-format', 'e4m3')] : []),
    flag('--tensor-model-parallel-size', p.tp), ...(p.tp > 1 ? [flag('--sequence-parallel')] : []),
    flag('--pipeline-model-parallel-size', p.pp),
  ];
  if (p.vpp > 1) out.push(flag('--num-virtual-stages-per-pipeline-rank', p.vpp));
  const [first, last] = [p.decoder_first_pipeline_num_layers, p.decoder_last_pipeline_num_layers];
  if (first) out.push(flag('--decoder-first-pipeline-num-layers', first));
  if (last) out.push(flag('--decoder-last-pipeline-num-layers', last));
  if (p.account_for_embedding_in_pipeline_split) out.push(flag('--account-for-embedding-in-pipeline-split'));
  if (p.account_for_loss_in_pipeline_split) out.push(flag('--account-for-loss-in-pipeline-split'));
  out.push(flag('--context-parallel-size', p.cp), flag('--expert-model-parallel-size', ep));
  if (p.etp !== p.tp) out.push(flag('--expert-tensor-parallel-size', p.etp));
  if (p.shard === 'optimizer') out.push(flag('--use-distributed-optimizer'));
  if (p.shard === 'full')
    out.push(flag('--use-megatron-fsdp'), flag('--data-parallel-sharding-strategy', 'optim_grads_params'));
  if (p.recompute === 'full') {
    out.push(flag('--recompute-granularity', 'full'), flag('--recompute-method', 'uniform'),
      flag('--recompute-num-layers', 1));
  }
  if (p.recompute === 'selective') out.push(flag('--recompute-granularity', 'selective'));
  if (p.recompute_modules.length > 0) out.push(flag('--recompute-modules', p.recompute_modules.join(' ')));
  out.push(flag('--moe-token-dispatcher-type', p.dispatcher));
  // Megatron-Core's only backend with a wire dtype is ncclep
  if (p.dispatch_fwd_dtype === 'mxfp8') {
    out.push(flag('--moe-flex-dispatcher-backend', 'ncclep'), flag('--moe-dispatch-fwd-dtype', 'mxfp8'));
  }
  if (p.overlap === 'a2a') out.push(flag('--overlap-moe-expert-parallel-comm'));
  if (p.routing === 'uniform') out.push(flag('--moe-router-force-load-balancing'));
  if (config.moe.drop_tokens) out.push(flag('--moe-expert-capacity-factor', config.moe.capacity_factor));
  if (p.dispatch === 'padded') out.push(flag('--moe-pad-expert-input-to-capacity'));
  return out.join(' ');
}
