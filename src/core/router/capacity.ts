/** What an expert's capacity depends on: one routing group's tokens, the experts, top-k, the capacity factor. */
export interface CapacityInputs {
  /** S: tokens per routing group */
  tokensPerGroup: number;
  /** E: experts of the layer */
  experts: number;
  /** k: choices per token */
  topK: number;
  capacityFactor: number;
  minCapacity: number;
}

/**
 * Expert capacity, the slots each expert has per routing group, as GShard, DeepSpeed's top2gating,
 * Tutel and fairseq size it: k choices per token share the slots, so balanced top-k routing at a
 * capacity factor of 1 or more drops nothing.
 *   C = min(S, max(min_capacity, ⌊k · CF · S / E⌋))
 * Rounded down, as Mesh TensorFlow's Switch code does (DeepSpeed and Megatron-Core round up: at most
 * one slot more). Never more than S: a token picks an expert at most once. The router, the layer
 * buffers and `simulate` all call this one function.
 */
export function expertCapacity(c: CapacityInputs): number {
  return Math.min(c.tokensPerGroup,
    Math.max(c.minCapacity, Math.floor((c.topK * c.capacityFactor * c.tokensPerGroup) / c.experts)));
}
