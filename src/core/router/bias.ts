/**
 * One aux-free balancing step for one layer (DeepSeek-V3 §2.1.2, "auxiliary-loss-free load
 * balancing"; Megatron-Core's get_updated_expert_bias): an expert that got more than the mean
 * load this step has its bias lowered by γ, one that got less raised by γ, an expert at the mean
 * left alone (sign 0):
 *   b_e ← b_e + γ · sign(mean − load_e)
 * `load[e]` counts the token-choices expert e kept over the whole step (all k choices, after capacity
 * drops, as Megatron-Core counts its routing map). In place.
 */
export function updateBias(bias: Float32Array, load: number[], rate: number): void {
  if (load.length !== bias.length) throw new Error(`${load.length} loads for ${bias.length} experts`);
  const mean = load.reduce((a, b) => a + b, 0) / load.length;
  for (let e = 0; e < bias.length; e++) bias[e] = bias[e]! + rate * Math.sign(mean - load[e]!);
}
