import tf from '../util/tfjs.cjs';
import type { Config } from '../config/defaults.js';
import { balanceLoss, combine, zLoss, type RoutingConstants } from '../router/gates.js';
import {
  attentionBlock, denseFfnBlock, embed, ffnInput, lmLoss, routerLogits, sharedExperts, type BlockContext, type Weights,
} from './blocks.js';
import { dropout } from './layers.js';
import { isRoutingState, isSwitchBlock } from './params.js';
import { PROFILE } from '../instrument/recorder.js';
import { useFused } from './fused/io.js';
import { fusedCombine } from './fused/switch-combine.js';
import { fusedBalanceLoss, fusedZLoss } from './fused/router-losses.js';

/**
 * The model, cut at its Switch layers into stages that the coordinator runs with tfjs autodiff.
 * Expert work happens between stages (asynchronously, on the devices), so no gradient tape spans it:
 *
 *   stage 0:  embed → blocks … → attention of Switch block s₀ → (h, u = LN₂(h), router logits z, shared experts on u)
 *   [Switch layer 0: route z, dispatch u, experts, combine → o]
 *   stage 1:  h + Σ_c keep·g·o (gates from z) + shared, aux losses of layer 0 → … → (h, u, z) of s₁
 *   …
 *   stage S:  h + combine → remaining blocks → final LN → LM head → cross-entropy
 */
export interface StageInput {
  /** residual stream before the Switch FFN, [N, d] */
  h: tf.Tensor2D;
  /** router logits of that Switch layer, [N, E] */
  logits: tf.Tensor2D;
  /** expert outputs per choice, [N, d] each (zero rows where dropped) */
  outputs: tf.Tensor2D[];
  routing: RoutingConstants;
  /** Σ of the shared experts on the layer's input, [N, d] (moe.shared_experts > 0) */
  shared?: tf.Tensor2D;
  /** the router's scores of `logits` [N, E], when the caller computed them (the fused kernels reuse them) */
  probs?: Float32Array;
}

export interface StageOutput {
  h?: tf.Tensor2D;
  u?: tf.Tensor2D;
  logits?: tf.Tensor2D;
  /**
   * the next Switch layer's shared experts on u (computed here, where u is: their gradient reaches u on this
   * stage's tape)
   */
  shared?: tf.Tensor2D;
  ce?: tf.Scalar;
  balance?: tf.Scalar;
  z?: tf.Scalar;
}

export interface StageContext extends BlockContext {
  tokens: tf.Tensor1D;
  targets?: tf.Tensor1D;
  /** router-input jitter for a Switch block (training only) */
  jitter(block: number, shape: [number, number]): tf.Tensor | undefined;
}

export function switchBlocks(config: Config): number[] {
  return Array.from({ length: config.model.n_layers }, (_, l) => l).filter((l) => isSwitchBlock(config, l));
}

/** Blocks [first, last] that stage k covers; the last one stops after attention unless it is the final stage. */
function stageRange(config: Config, k: number): { from: number; to: number; final: boolean } {
  const sw = switchBlocks(config);
  const final = k === sw.length;
  return { from: k === 0 ? 0 : sw[k - 1]! + 1, to: final ? config.model.n_layers - 1 : sw[k]!, final };
}

export function stageCount(config: Config): number {
  return switchBlocks(config).length + 1;
}

/** Names of the parameters stage k reads (tf.grads needs exactly these). */
export function stageParams(config: Config, k: number, all: string[]): string[] {
  const { from, to, final } = stageRange(config, k);
  return all.filter((name) => {
    if (isRoutingState(name)) return false; // no gradient: moved by the load
    if (name === 'wte' || name === 'wpe') return k === 0;
    if (name === 'ln_f.g' || name === 'ln_f.b' || name === 'lm_head') return final;
    const l = Number(name.split('.')[1]);
    if (l < from || l > to) return false;
    if (!final && l === to) return /\.(ln1|attn|ln2|router|shared)\./.test(name);
    return true;
  });
}

/** Runs stage k forward. Pure tfjs: differentiable in its inputs and weights. */
export function runStage(k: number, input: StageInput | undefined, w: Weights, ctx: StageContext): StageOutput {
  const { config } = ctx;
  const { from, to, final } = stageRange(config, k);
  const out: StageOutput = {};
  let h: tf.Tensor2D;
  if (k === 0) h = embed(ctx.tokens, w, ctx);
  else {
    const inp = input!;
    const fused = useFused(config);
    PROFILE?.begin('combine', 'compute', from - 1);
    const mask = ctx.mask(`h.${from - 1}.switch`, inp.h.shape);
    if (fused) h = fusedCombine(inp.h, inp.logits, inp.outputs, inp.routing, config.moe, inp.shared, mask, inp.probs);
    else {
      const routed = combine(inp.logits, inp.outputs, inp.routing, config.moe);
      const y = inp.shared ? (routed.add(inp.shared) as tf.Tensor2D) : routed; // shared experts: added unweighted
      h = inp.h.add(dropout(y, mask)) as tf.Tensor2D;
    }
    PROFILE?.end();
    PROFILE?.begin('aux_losses', 'compute', from - 1);
    out.balance = fused ? fusedBalanceLoss(
      inp.logits, inp.routing, config.moe, inp.probs,
    ) : balanceLoss(inp.logits, inp.routing, config.moe);
    out.z = (fused ? fusedZLoss : zLoss)(inp.logits, config.moe);
    PROFILE?.end();
  }
  for (let l = from; l <= to; l++) {
    h = attentionBlock(h, l, w, ctx);
    if (!final && l === to) {
      const u = ffnInput(h, l, w, useFused(config));
      // a hash router has no weights: constant logits, never read (the hash chooses, the gate is 1)
      const logits = config.moe.router === 'hash'
        ? (tf.zeros([u.shape[0], config.moe.n_experts]) as tf.Tensor2D)
        : routerLogits(u, l, w, ctx.jitter(l, u.shape), useFused(config));
      const shared = config.moe.shared_experts > 0 ? sharedExperts(u, l, w, ctx) : undefined;
      return { ...out, h, u, logits, ...(shared ? { shared } : {}) };
    }
    h = denseFfnBlock(h, l, w, ctx);
  }
  if (ctx.targets) out.ce = lmLoss(h, ctx.targets, w, useFused(config));
  else out.h = h;
  return out;
}
