import type { Config } from '../core/config/defaults.js';
import type { RECOMPUTE_MODULES } from '../core/config/schema-parallel.js';
import { isSwitchBlock } from '../core/model/params.js';
import type { Gemm, Work } from './work-types.js';
import type { Layout } from './layout.js';
import { activationValues, attentionActivations, attentionWork, ffnGemms, ffnHiddenBytes } from './shapes.js';

/**
 * Activation recomputation as Megatron-Core runs it (TransformerConfig recompute_granularity / recompute_modules;
 * research notes §4): `full` runs each block's forward again in its backward and keeps only the block's input;
 * `selective` runs the listed modules again (none listed: core_attn, Megatron-Core's default):
 *   core_attn       the attention core (flash attention: its scores were never kept, so it frees nothing more)
 *   layernorm       the two norms (their outputs discarded after use: the 2h inputs of attention and of the FFN)
 *   mla_up_proj     MLA's up-projections (Q, K and V discarded, rebuilt from the latents)
 *   moe_act         the experts' activation (its output, 2F_e a routed copy, discarded)
 *   mlp             a dense block's FFN (only its input kept)
 *   shared_experts  a Switch block's shared experts (only their input kept)
 *   moe             the whole Switch layer: router, shared experts, experts, and its dispatch and combine again
 */
export type RecomputeModule = (typeof RECOMPUTE_MODULES)[number];

/** The modules selective recompute runs again; none unless plan.recompute is selective. */
export function recomputedModules(config: Config): Set<RecomputeModule> {
  if (config.plan.recompute !== 'selective') return new Set();
  return new Set(config.plan.recompute_modules.length > 0 ? config.plan.recompute_modules : ['core_attn']);
}

/** A Switch layer's forward runs again in the backward (full, or the moe module): its experts and its exchanges too. */
export const moeRecomputed = (config: Config) => config.plan.recompute === 'full' || recomputedModules(config).has('moe');

/** All-to-alls of a Switch layer a micro-batch: dispatch and combine, forward and backward, and forward again when recomputed. */
export const exchangesPerLayer = (config: Config) => (moeRecomputed(config) ? 6 : 4);

const each = (gemms: Gemm[]) => gemms.filter((g) => g.m > 0).map((g) => [g]);

/**
 * The dense work selective recompute runs again in block l, one micro-batch (forward work; T tokens on this GPU,
 * T/tp its sequence-parallel share): core_attn the flash attention forward; layernorm two norms, h read and h written
 * a token each on T/tp tokens; mla_up_proj the up-projection GEMMs; mlp a dense block's FFN; shared_experts (and
 * moe) a Switch block's shared experts, moe also its router GEMM. The experts: expertRecomputeWork.
 */
export function selectiveWork(config: Config, L: Layout, l: number, bytesPerValue: number): Work {
  const on = recomputedModules(config);
  const d = config.model.d_model;
  const T = L.microBatch * L.seq;
  const moe = isSwitchBlock(config, l);
  const att = attentionWork(config, L);
  const w: Work = { kernels: [], attentionFlops: 0, attentionKernels: 0, bytes: 0, fixedUs: 0, memKernels: 0 };
  const ffn = (F: number) => {
    const f = ffnGemms(config, T, d, F / L.tp);
    w.kernels.push(...each([f.up, f.down]));
    w.bytes += ((T * activationValues(config, F)) / L.tp) * bytesPerValue;
    w.memKernels! += 1;
  };
  if (on.has('core_attn')) {
    w.attentionFlops = att.coreFlops;
    w.attentionKernels = 1;
  }
  if (on.has('layernorm')) {
    w.bytes += L.tokensPerGpu * 4 * d * bytesPerValue;
    w.memKernels! += 2;
  }
  if (on.has('mla_up_proj')) w.kernels.push(...each(att.up));
  if (!moe && on.has('mlp')) ffn(config.model.d_ff);
  const shared = config.moe.shared_experts * L.dffExpert;
  if (moe && shared > 0 && (on.has('shared_experts') || on.has('moe'))) ffn(shared);
  if (moe && on.has('moe')) w.kernels.push(...each([{ m: L.tokensPerGpu, k: d, n: config.moe.n_experts }]));
  return w;
}

/**
 * What the experts of a GPU run again on their rows: their whole forward `forward` (full, or moe), or only the
 * activation over the rows' hidden size (moe_act: its values read and written, one kernel), or nothing.
 */
export function expertRecomputeWork(config: Config, L: Layout, rows: number[], forward: Work, bytesPerValue: number):
  Work | undefined {
  if (moeRecomputed(config)) return forward;
  if (!recomputedModules(config).has('moe_act')) return undefined;
  const total = rows.reduce((a, b) => a + b, 0);
  const h = L.dffExpert / L.etp;
  const bytes = total * activationValues(config, h) * bytesPerValue;
  return { kernels: [], attentionFlops: 0, attentionKernels: 0, bytes, fixedUs: 0, memKernels: total > 0 ? 1 : 0 };
}

/**
 * Activation bytes a token no longer keeps in block l under selective recompute, bf16, before the ÷ tp of tensor
 * and sequence parallelism (memory.ts's counts): layernorm 2h (attention's input) + 2h (the dense FFN's or the shared
 * experts' input); mla_up_proj Q, K and V (shapes.ts); moe_act 2F_e/etp a routed copy (k of them); mlp the dense FFN's
 * hidden; shared_experts the shared experts' hidden; moe everything of the Switch layer but its input.
 */
export function freedActivations(config: Config, L: Layout, l: number): number {
  const on = recomputedModules(config);
  const h = config.model.d_model;
  const k = config.moe.top_k;
  const Fe = L.dffExpert / L.etp;
  const Fs = config.moe.shared_experts * L.dffExpert;
  const moe = isSwitchBlock(config, l);
  let freed = 0;
  if (on.has('layernorm')) freed += 2 * h + (!moe || Fs > 0 ? 2 * h : 0);
  if (on.has('mla_up_proj')) freed += attentionActivations(config, L).upProj;
  if (!moe && on.has('mlp')) freed += ffnHiddenBytes(config, config.model.d_ff);
  if (moe && on.has('moe')) return freed + k * (2 * h + ffnHiddenBytes(config, Fe)) + (Fs > 0 ? ffnHiddenBytes(config, Fs) : 0);
  if (moe && on.has('moe_act')) freed += k * 2 * Fe;
  if (moe && on.has('shared_experts') && Fs > 0) freed += ffnHiddenBytes(config, Fs);
  return freed;
}
