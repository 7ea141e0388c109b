import type { Config } from '../core/config/defaults.js';
import { blockParams } from '../core/model/params.js';
import { exchangeOverheadUs, type Cluster } from './cluster.js';
import { flatA2aUs, hierarchicalA2aUs } from './collectives/all-to-all.js';
import { allGatherUs, reduceScatterUs } from './collectives/gather-scatter.js';
import { sendUs } from './collectives/p2p.js';
import { computeUs, valueBytes } from './compute.js';
import type { Layout } from './layout.js';
import { layerRows } from './routing.js';
import { layerTraffic } from './traffic.js';
import { fanout } from './fanout.js';
import { backwardOf, blockWork, expertWork, headWork } from './work.js';
import type { LayerLoad } from './workload.js';

/** One Switch layer of one stage, one micro-batch (µs; per GPU quantities are the pacing GPU's: the one whose all-to-all + experts take longest). */
export interface SwitchLayerTime {
  block: number;
  /** one all-to-all on the pacing GPU, and all of them (dispatch and combine, forward and backward; again forward with full recompute) */
  a2a_us: number;
  comm_us: number;
  /** of comm_us, what other micro-batches' compute does not hide (plan.overlap a2a), on the pacing GPU */
  exposed_comm_us: number;
  /** the pacing GPU's experts, forward and backward (and the recompute) */
  expert_us: number;
  /** slowest GPU's (all-to-all + experts) over the mean GPU's: 1 when routing is balanced */
  straggler_factor: number;
  drop_fraction: number;
  /** mean expert groups a token's copies go to (limited routing, fanout.ts; 1 without it) */
  groups_per_token: number;
  /** the stage's GPUs together, all all-to-alls of the micro-batch */
  bytes_intra_node: number;
  bytes_inter_node: number;
  /** per GPU of the stage: its all-to-alls' and its experts' µs (for the trace) */
  per_gpu: { a2a: number; expert: number }[];
}

/** What one pipeline stage spends on one micro-batch, by part (µs); `total_us` is their sum. */
export interface StageTime {
  stage: number;
  dense_us: number;
  recompute_us: number;
  tensor_parallel_us: number;
  fsdp_us: number;
  experts_us: number;
  a2a_us: number;
  p2p_us: number;
  total_us: number;
  /** the stage's backward compute of one micro-batch (what the last micro-batch's gradient reduction can hide behind) */
  backward_us: number;
  forward_us: number;
  switch_layers: SwitchLayerTime[];
  /** collectives of one micro-batch: µs each and how many (for the per-step table) */
  collectives: { name: string; us: number; count: number; bytes: number }[];
}

/**
 * One micro-batch through pipeline stage s: per block its dense compute (forward, backward, the
 * recompute), its tensor-parallel collectives (sequence parallelism: an all-gather before and a
 * reduce-scatter after attention and after a dense MLP, forward and backward), FSDP's parameter
 * gathers and gradient reduce-scatter (hidden behind the block's compute as far as they go), and per
 * Switch layer the expert-parallel exchange: the pacing GPU of the stage is the one whose all-to-alls
 * plus experts take longest, max_i(a2a_i + experts_i), never the slowest all-to-all of one GPU plus
 * the slowest experts of another. Then the stage's pipeline sends (2·vpp a micro-batch).
 */
export function stageTime(c: Cluster, config: Config, L: Layout, s: number, loads: LayerLoad[], switchIndex: Map<number, number>): StageTime {
  const vb = valueBytes(c);
  const d = config.model.d_model;
  const tokens = L.microBatch * L.seq;
  const actBytes = tokens * d * vb; // a [T, d] activation: what the tp collectives and pipeline sends carry
  const full = config.plan.recompute === 'full';
  const perStage = L.gpus / L.pp;
  const collectives: StageTime['collectives'] = [];
  const note = (name: string, us: number, count: number, bytes: number) => {
    if (us > 0 && count > 0) collectives.push({ name, us, count, bytes });
  };
  const out: StageTime = { stage: s, dense_us: 0, recompute_us: 0, tensor_parallel_us: 0, fsdp_us: 0, experts_us: 0, a2a_us: 0, p2p_us: 0, total_us: 0, backward_us: 0, forward_us: 0, switch_layers: [], collectives };
  for (const l of L.stages[s]!) {
    const b = blockWork(config, L, l, vb);
    const fwd = computeUs(c, config, { ...b.dense, fixedUs: c.gpu.block_overhead_us ?? 0 });
    const bwd = computeUs(c, config, backwardOf(b.dense));
    const recompute = full ? computeUs(c, config, b.dense) : config.plan.recompute === 'selective' ? computeUs(c, config, b.attentionCore) : 0;
    out.dense_us += fwd + bwd;
    out.recompute_us += recompute;
    out.forward_us += fwd;
    out.backward_us += bwd + recompute;
    // sequence parallelism: attention (and a dense MLP) each an all-gather in and a reduce-scatter out, forward and backward (and the recompute)
    if (L.tp > 1) {
      const pairs = (b.moe ? 1 : 2) * (full ? 3 : 2);
      const ag = allGatherUs(c, L.groups.tp, actBytes);
      const rs = reduceScatterUs(c, L.groups.tp, actBytes);
      out.tensor_parallel_us += pairs * (ag + rs);
      note('tp all_gather', ag, pairs, actBytes);
      note('tp reduce_scatter', rs, pairs, actBytes);
    }
    if (config.plan.shard === 'full') {
      // FSDP: the block's parameters gathered for the forward and again for the backward, its gradients reduce-scattered (values of vb bytes)
      const p = blockParams(config, l);
      const dense = ((p.norms + p.attention + p.ffn) / L.tp) * vb;
      const experts = (p.experts / (L.ep * L.etp)) * vb;
      const comm = 2 * (allGatherUs(c, L.groups.dp, dense) + allGatherUs(c, L.groups.edp, experts)) + reduceScatterUs(c, L.groups.dp, dense) + reduceScatterUs(c, L.groups.edp, experts);
      out.fsdp_us += Math.max(0, comm - (fwd + bwd)); // prefetched: what the block's own compute does not hide
      note('fsdp all_gather', allGatherUs(c, L.groups.dp, dense) + allGatherUs(c, L.groups.edp, experts), 2, dense + experts);
      note('fsdp reduce_scatter', reduceScatterUs(c, L.groups.dp, dense) + reduceScatterUs(c, L.groups.edp, experts), 1, dense + experts);
    }
    if (b.moe) {
      const layer = switchLayer(c, config, L, l, loads[switchIndex.get(l)!], fwd + bwd, perStage);
      out.switch_layers.push(layer);
      out.experts_us += layer.expert_us;
      out.a2a_us += layer.exposed_comm_us;
      const exchanges = full ? 6 : 4;
      note(`ep all_to_all (${c.all_to_all})`, layer.a2a_us, exchanges, (layer.bytes_intra_node + layer.bytes_inter_node) / exchanges / perStage);
    }
  }
  if (s === L.pp - 1) {
    const head = headWork(config, L, vb);
    out.dense_us += computeUs(c, config, head) + computeUs(c, config, backwardOf(head));
    out.backward_us += computeUs(c, config, backwardOf(head));
    out.forward_us += computeUs(c, config, head);
  }
  if (L.pp > 1) {
    // activations forward and gradients backward at each of the vpp chunk boundaries, sequence-parallel shards
    const send = sendUs(c, actBytes / L.tp, L.ppCrossesNodes);
    out.p2p_us = 2 * L.vpp * send;
    note('pp send/recv', send, 2 * L.vpp, actBytes / L.tp);
  }
  out.total_us = out.dense_us + out.recompute_us + out.tensor_parallel_us + out.fsdp_us + out.experts_us + out.a2a_us + out.p2p_us;
  return out;
}

/** One Switch layer across the stage's GPUs: traffic from each GPU's rows, per GPU its all-to-alls and experts, the pacing GPU. */
function switchLayer(c: Cluster, config: Config, L: Layout, block: number, load: LayerLoad | undefined, denseUs: number, perStage: number): SwitchLayerTime {
  const vb = valueBytes(c);
  const rows = layerRows(config, L, load, perStage);
  const fan = fanout(config, L, load);
  const t = layerTraffic(c, L, (i) => rows[i]!.sent, config.model.d_model * vb, fan);
  const exchanges = config.plan.recompute === 'full' ? 6 : 4; // dispatch and combine, forward and backward (and forward again)
  const overlap = config.plan.overlap === 'a2a' && L.microBatches >= 2;
  const per = t.gpus.map((g) => {
    const one = (c.all_to_all === 'flat' ? flatA2aUs(c, g.flat) : hierarchicalA2aUs(c, g.hier)) + exchangeOverheadUs(c);
    const etp = L.etp > 1 ? allGatherUs(c, L.groups.etp, g.rows.reduce((a, b) => a + b, 0) * L.etp * config.model.d_model * vb) * 2 : 0;
    const a2a = exchanges * one + (exchanges / 2) * etp;
    const w = expertWork(config, L, g.rows, vb);
    const expert = computeUs(c, config, w) + computeUs(c, config, backwardOf(w)) + (config.plan.recompute === 'full' ? computeUs(c, config, w) : 0);
    const exposed = overlap ? Math.max(0, a2a - denseUs) : a2a; // hidden behind another micro-batch's dense compute (MCore's 1F1B overlap, DeepEP)
    return { one, a2a, exposed, expert };
  });
  const pace = per.reduce((best, x, i) => (x.exposed + x.expert > per[best]!.exposed + per[best]!.expert ? i : best), 0);
  const mean = per.reduce((a, x) => a + x.a2a + x.expert, 0) / per.length;
  const p = per[pace]!;
  const routed = rows.reduce((a, r) => a + r.routed, 0);
  const dropped = rows.reduce((a, r) => a + r.dropped, 0);
  const hier = c.all_to_all === 'hierarchical';
  return {
    block, a2a_us: p.one, comm_us: p.a2a, exposed_comm_us: p.exposed, expert_us: p.expert,
    straggler_factor: mean > 0 ? (p.a2a + p.expert) / mean : 1, drop_fraction: routed > 0 ? dropped / routed : 0, groups_per_token: fan.groupsPerToken,
    bytes_intra_node: exchanges * (hier ? t.hierIntraBytes : t.intraBytes), bytes_inter_node: exchanges * (hier ? t.hierInterBytes : t.interBytes),
    per_gpu: per.map((x) => ({ a2a: x.a2a, expert: x.expert })),
  };
}
