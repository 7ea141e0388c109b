/**
 * Bytes a parameter costs at the cluster's value size (valueBytes: 2 for bf16, 4 for fp32), training
 * with AdamW, by part, and what one optimizer step reads and writes of it.
 *   mixed precision (2-byte values): the weight and its gradient in bf16, and an fp32 master weight,
 *     Adam's m and v (12 bytes): ZeRO (Rajbhandari et al. 2020, §3.1: 2Ψ + 2Ψ + 12Ψ), gradients
 *     reduced in bf16 (Megatron-Core's grad_reduce_in_fp32: false);
 *   fp32 (4-byte values, this machine's tfjs training): the weight is its own master copy: weight and
 *     gradient 4 bytes each, Adam's m and v 8.
 * A step reads the gradient, and reads and writes the master weight, m and v; mixed precision also
 * writes the bf16 weight back: 2 + 8 + 8 + 8 + 2 or 4 + 8 + 8 + 8 bytes.
 */
export interface ParamBytes {
  weight: number;
  grad: number;
  /** optimizer state held: the fp32 master weight (mixed precision only), m and v */
  optimizer: number;
  /** what one AdamW step moves through memory */
  step_traffic: number;
}

export function paramBytes(valueBytes: number): ParamBytes {
  const mixed = valueBytes < 4;
  const adam = 4 + 4; // m and v, fp32
  const master = 4; // the fp32 weight the step updates: a copy under mixed precision, the weight itself in fp32
  return {
    weight: valueBytes, grad: valueBytes, optimizer: (mixed ? master : 0) + adam,
    step_traffic: valueBytes + 2 * (master + adam) + (mixed ? valueBytes : 0),
  };
}
