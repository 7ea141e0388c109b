import type { Config } from '../config/defaults.js';
import type { ParamSet } from './params.js';
import { switchBlocks } from './stages.js';
import { updateBias } from '../router/bias.js';
import { hashExperts, hashTable } from '../router/hash.js';
import type { RouteInputs } from '../router/route.js';

/**
 * What routing keeps between steps beside the router weights, per Switch block: the aux-free bias
 * (`h.<block>.router.bias`, a tensor of the parameter set, so checkpoints and spmd replicas carry it,
 * but routing state: no gradient, no optimizer) and hash routing's table of token id → expert (drawn
 * once from the run's seed, never saved).
 */
export class RouterState {
  private readonly hashTables = new Map<number, Int32Array>();

  constructor(
    private readonly config: Config,
    private readonly params: ParamSet,
  ) {}

  /** What routing block `block` needs beside the scores of tokens `ids`: the bias, or their hashed experts. */
  inputs(block: number, ids: Int32Array): RouteInputs {
    const m = this.config.moe;
    if (m.router === 'hash') {
      let table = this.hashTables.get(block);
      if (!table) this.hashTables.set(
        block, (table = hashTable(this.config.seed, block, this.params.get('wte')!.shape[0]!, m.n_experts)),
      );
      return { hashed: hashExperts(table, ids) };
    }
    return { bias: this.params.get(`h.${block}.router.bias`)?.data };
  }

  /**
   * Aux-free balancing, after a training step: each Switch layer's bias moves by the step's load over
   * every group, micro-batch and replica (`load[k][e]`, the layer's tokens_per_expert):
   *   b_e ← b_e + γ · sign(mean_e' load_e' − load_e)
   * (DeepSeek-V3 §2.1.2; Megatron-Core's get_updated_expert_bias). Every spmd replica gets the same
   * global load, so their biases stay identical.
   */
  step(load: number[][]): void {
    if (this.config.moe.balance !== 'aux_free') return;
    switchBlocks(this.config).forEach((block, k) => updateBias(
      this.params.get(`h.${block}.router.bias`)!.data, load[k]!, this.config.moe.bias_update_rate,
    ));
  }
}
