import type { Config } from '../core/config/defaults.js';
import { blockParams } from '../core/model/params.js';
import type { Cluster } from './cluster.js';
import { allGatherUs, reduceScatterUs } from './collectives/gather-scatter.js';
import { computeUs, kernelCount, valueBytes } from './compute.js';
import type { Work } from './work-types.js';
import { hostBoundUs } from './host.js';
import { glueWork } from './kernels.js';
import type { Layout } from './layout.js';
import type { SwitchLayerTime } from './layer-time.js';
import { backwardOf, blockWork, expertWork, headWork } from './work.js';

/** One block of a stage, one micro-batch (µs), by part; `layer` is its Switch layer. */
export interface BlockTime {
  dense_us: number;
  recompute_us: number;
  tensor_parallel_us: number;
  fsdp_us: number;
  /** what the host's issuing of kernels adds beyond the GPU's time (host.ts) */
  host_us: number;
  forward_us: number;
  backward_us: number;
  layer?: SwitchLayerTime;
}

export type Note = (name: string, us: number, count: number, bytes: number) => void;

/**
 * Block l, one micro-batch: dense compute forward, backward and recomputed; sequence parallelism's
 * all-gather and reduce-scatter around attention (and a dense MLP), each pass; FSDP's gathers, hidden
 * behind the pass's whole compute (dense and experts: the next block's gather is prefetched during
 * this one), forward: max(0, AG − C_fwd), backward: max(0, AG + RS − C_bwd) (the backward's one gather
 * serves the recompute too); then per pass the host's time to issue it (host.ts).
 */
export function blockTime(
  c: Cluster, config: Config, L: Layout, l: number, switchLayer: (denseUs: number) => SwitchLayerTime, note: Note,
): BlockTime {
  const vb = valueBytes(c);
  const detailed = c.kernels !== undefined;
  const full = config.plan.recompute === 'full';
  const b = blockWork(config, L, l, vb, detailed);
  const glue = (dir: 'forward' | 'backward') => (b.moe ? computeUs(c, config, glueWork(c, dir)) : 0);
  const plain = computeUs(c, config, b.dense) + glue('forward');
  const fwd = computeUs(c, config, { ...b.dense, fixedUs: c.gpu.block_overhead_us ?? 0 }) + glue('forward');
  const bwd = computeUs(c, config, backwardOf(b.dense)) + glue('backward');
  const recompute = full ? plain : config.plan.recompute === 'selective' ? computeUs(c, config, b.attentionCore) : 0;
  // sequence parallelism: attention (and a dense MLP) each an all-gather in and a reduce-scatter out, each pass
  const pairs = b.moe ? 1 : 2;
  const actBytes = L.microBatch * L.seq * config.model.d_model * vb;
  const tpPair = L.tp > 1 ? allGatherUs(c, L.groups.tp, actBytes) + reduceScatterUs(c, L.groups.tp, actBytes) : 0;
  if (L.tp > 1) {
    const passes = full ? 3 : 2;
    note('tp all_gather', allGatherUs(c, L.groups.tp, actBytes), pairs * passes, actBytes);
    note('tp reduce_scatter', reduceScatterUs(c, L.groups.tp, actBytes), pairs * passes, actBytes);
  }
  const tpFwd = pairs * tpPair;
  const tpBwd = pairs * tpPair * (full ? 2 : 1);
  const layer = b.moe ? switchLayer(fwd + bwd) : undefined;
  const exchanges = full ? 6 : 4;
  const expertFwd = layer?.expert_forward_us ?? 0;
  const expertBwd = (layer?.expert_us ?? 0) - expertFwd;
  const a2aFwd = ((layer?.exposed_comm_us ?? 0) * 2) / exchanges;
  const a2aBwd = (layer?.exposed_comm_us ?? 0) - a2aFwd;
  const fsdp = config.plan.shard === 'full' ? fsdpUs(c, config, L, l, note) : { gather: 0, scatter: 0, collectives: 0 };
  const fsdpFwd = Math.max(0, fsdp.gather - (fwd + expertFwd));
  const fsdpBwd = Math.max(0, fsdp.gather + fsdp.scatter - (bwd + recompute + expertBwd));
  // the host: every kernel of the pass and every collective (tp pairs, the all-to-alls, FSDP's)
  const experts = b.moe ? expertWork(config, L, new Array<number>(L.expertsPerGpu).fill(1), vb, detailed) : undefined;
  const k = c.kernels;
  const tpColl = L.tp > 1 ? 2 * pairs : 0;
  const moeFwd = b.moe ? (k?.moe_glue_forward ?? 0) + kernelCount(experts!) + 2 : 0; // glue, experts, dispatch and combine
  const fwdKernels = kernelCount(b.dense) + moeFwd + tpColl + fsdp.collectives;
  const recomputeKernels = full ? fwdKernels : config.plan.recompute === 'selective' ? kernelCount(b.attentionCore) : 0;
  const moeBwd = b.moe ? (k?.moe_glue_backward ?? 0) + kernelCount(backwardOf(experts!)) + 2 : 0;
  const bwdKernels = kernelCount(backwardOf(b.dense)) + moeBwd + tpColl + 2 * fsdp.collectives + recomputeKernels;
  const gpuFwd = fwd + tpFwd + fsdpFwd + expertFwd + a2aFwd;
  const gpuBwd = bwd + recompute + tpBwd + fsdpBwd + expertBwd + a2aBwd;
  const host = hostBoundUs(c, { direction: 'forward', kernels: fwdKernels, gpuUs: gpuFwd })
    + hostBoundUs(c, { direction: 'backward', kernels: bwdKernels, gpuUs: gpuBwd });
  return {
    dense_us: fwd + bwd, recompute_us: recompute, tensor_parallel_us: tpFwd + tpBwd, fsdp_us: fsdpFwd + fsdpBwd, host_us: host,
    forward_us: fwd, backward_us: bwd + recompute, layer,
  };
}

/** FSDP: block l's parameters (its tp and ep·etp share, values of vb bytes) gathered over dp and edp, gradients reduce-scattered. */
function fsdpUs(c: Cluster, config: Config, L: Layout, l: number, note: Note): { gather: number; scatter: number; collectives: number } {
  const vb = valueBytes(c);
  const p = blockParams(config, l);
  const dense = ((p.norms + p.attention + p.ffn) / L.tp) * vb;
  const experts = (p.experts / (L.ep * L.etp)) * vb;
  const gather = allGatherUs(c, L.groups.dp, dense) + allGatherUs(c, L.groups.edp, experts);
  const scatter = reduceScatterUs(c, L.groups.dp, dense) + reduceScatterUs(c, L.groups.edp, experts);
  note('fsdp all_gather', gather, 2, dense + experts);
  note('fsdp reduce_scatter', scatter, 1, dense + experts);
  const collectives = (L.groups.dp.ranks > 1 && dense > 0 ? 1 : 0) + (L.groups.edp.ranks > 1 && experts > 0 ? 1 : 0);
  return { gather, scatter, collectives };
}

/** The last stage's LM head and loss, one micro-batch: forward, backward, and the host's time to issue them. */
export function headTime(c: Cluster, config: Config, L: Layout): { forward_us: number; backward_us: number; host_us: number } {
  const head: Work = headWork(config, L, valueBytes(c));
  const back = backwardOf(head);
  const forward = computeUs(c, config, head);
  const backward = computeUs(c, config, back);
  const host = hostBoundUs(c, { direction: 'forward', kernels: kernelCount(head), gpuUs: forward })
    + hostBoundUs(c, { direction: 'backward', kernels: kernelCount(back), gpuUs: backward });
  return { forward_us: forward, backward_us: backward, host_us: host };
}
