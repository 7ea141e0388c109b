import type { Config } from '../core/config/defaults.js';
import { exchangeOverheadUs, type Cluster } from './cluster.js';
import { flatA2aUs, hierarchicalA2aUs } from './collectives/all-to-all.js';
import { allGatherUs } from './collectives/gather-scatter.js';
import { sendUs } from './collectives/p2p.js';
import { computeUs, valueBytes } from './compute.js';
import type { Layout } from './layout.js';
import { layerRows } from './routing.js';
import { layerTraffic } from './traffic.js';
import { fanout } from './fanout.js';
import { backwardOf, expertWork } from './work.js';
import { blockTime, headTime } from './block.js';
import type { LayerLoad } from './workload.js';

/** One Switch layer of one stage, one micro-batch (µs; per GPU quantities are the pacing GPU's: the one whose all-to-all + experts take longest). */
export interface SwitchLayerTime {
  block: number;
  /** one all-to-all on the pacing GPU, and all of them (dispatch and combine, forward and backward; again forward with full recompute) */
  a2a_us: number;
  comm_us: number;
  /** of comm_us, what other micro-batches' compute does not hide (plan.overlap a2a), on the pacing GPU */
  exposed_comm_us: number;
  /** the pacing GPU's experts, forward and backward (and the recompute), and of it the forward */
  expert_us: number;
  expert_forward_us: number;
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
  /** what issuing the kernels on the host adds beyond the GPU's time (host.ts; 0 without cluster.kernels) */
  host_us: number;
  total_us: number;
  /** the stage's backward compute of one micro-batch (what the last micro-batch's gradient reduction can hide behind) */
  backward_us: number;
  forward_us: number;
  switch_layers: SwitchLayerTime[];
  /** collectives of one micro-batch: µs each and how many (for the per-step table) */
  collectives: { name: string; us: number; count: number; bytes: number }[];
}

/**
 * One micro-batch through pipeline stage s: per block (block.ts) its dense compute (forward, backward,
 * the recompute), its tensor-parallel collectives (sequence parallelism: an all-gather before and a
 * reduce-scatter after attention and after a dense MLP, forward and backward), FSDP's parameter
 * gathers and gradient reduce-scatter (hidden behind the block's compute as far as they go), what the
 * host's issuing of its kernels adds when it is slower than the GPU (host.ts), and per
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
  const out: StageTime = {
    stage: s, dense_us: 0, recompute_us: 0, tensor_parallel_us: 0, fsdp_us: 0, experts_us: 0, a2a_us: 0, p2p_us: 0, host_us: 0, total_us: 0,
    backward_us: 0, forward_us: 0, switch_layers: [], collectives,
  };
  for (const l of L.stages[s]!) {
    // dense compute, tensor parallelism, FSDP and the host's issuing (block.ts); the Switch layer's exchange and experts
    const bt = blockTime(c, config, L, l, (denseUs) => switchLayerOnce(c, config, L, l, loads[switchIndex.get(l)!], denseUs, perStage), note);
    out.dense_us += bt.dense_us;
    out.recompute_us += bt.recompute_us;
    out.forward_us += bt.forward_us;
    out.backward_us += bt.backward_us;
    out.tensor_parallel_us += bt.tensor_parallel_us;
    out.fsdp_us += bt.fsdp_us;
    out.host_us += bt.host_us;
    const layer = bt.layer;
    if (layer) {
      out.switch_layers.push(layer);
      out.experts_us += layer.expert_us;
      out.a2a_us += layer.exposed_comm_us;
      const exchanges = full ? 6 : 4;
      note(`ep all_to_all (${c.all_to_all})`, layer.a2a_us, exchanges, (layer.bytes_intra_node + layer.bytes_inter_node) / exchanges / perStage);
    }
  }
  if (s === L.pp - 1) {
    const head = headTime(c, config, L);
    out.dense_us += head.forward_us + head.backward_us;
    out.backward_us += head.backward_us;
    out.forward_us += head.forward_us;
    out.host_us += head.host_us;
  }
  if (L.pp > 1) {
    // activations forward and gradients backward at each of the vpp chunk boundaries, sequence-parallel shards
    const send = sendUs(c, actBytes / L.tp, L.ppCrossesNodes);
    out.p2p_us = 2 * L.vpp * send;
    note('pp send/recv', send, 2 * L.vpp, actBytes / L.tp);
  }
  out.total_us = out.dense_us + out.recompute_us + out.tensor_parallel_us + out.fsdp_us + out.experts_us + out.a2a_us + out.p2p_us + out.host_us;
  return out;
}

/**
 * Within one projection (project() makes a Layout per call), Switch layers with the same load object and the same
 * dense time cost the same: switchLayer reads its block only to name it. So each is computed once per Layout.
 */
const computed = new WeakMap<Layout, { c: Cluster; config: Config; byLoad: Map<LayerLoad | undefined, Map<number, SwitchLayerTime>> }>();
function switchLayerOnce(c: Cluster, config: Config, L: Layout, block: number, load: LayerLoad | undefined, denseUs: number, perStage: number): SwitchLayerTime {
  let seen = computed.get(L);
  if (!seen || seen.c !== c || seen.config !== config) computed.set(L, (seen = { c, config, byLoad: new Map() }));
  const byDense = seen.byLoad.get(load) ?? new Map<number, SwitchLayerTime>();
  seen.byLoad.set(load, byDense);
  const hit = byDense.get(denseUs);
  if (hit) return { ...hit, block };
  const layer = switchLayer(c, config, L, block, load, denseUs, perStage);
  byDense.set(denseUs, layer);
  return layer;
}

/** One Switch layer across the stage's GPUs: traffic from each GPU's rows, per GPU its all-to-alls and experts, the pacing GPU. */
function switchLayer(c: Cluster, config: Config, L: Layout, block: number, load: LayerLoad | undefined, denseUs: number, perStage: number): SwitchLayerTime {
  const vb = valueBytes(c);
  const rows = layerRows(config, L, load, perStage);
  const fan = fanout(config, L, load);
  const t = layerTraffic(c, L, (i) => rows[i]!.sent, config.model.d_model * vb, fan);
  const exchanges = config.plan.recompute === 'full' ? 6 : 4; // dispatch and combine, forward and backward (and forward again)
  const overlap = config.plan.overlap === 'a2a' && L.microBatches >= 2;
  // GPUs with one traffic object (traffic.ts shares it between alike GPUs) cost the same: computed once
  const once = new Map<unknown, { one: number; a2a: number; exposed: number; expert: number; forward: number }>();
  const per = t.gpus.map((g) => {
    const seen = once.get(g);
    if (seen) return seen;
    const one = (c.all_to_all === 'flat' ? flatA2aUs(c, g.flat) : hierarchicalA2aUs(c, g.hier)) + exchangeOverheadUs(c);
    const etp = L.etp > 1 ? allGatherUs(c, L.groups.etp, g.rows.reduce((a, b) => a + b, 0) * L.etp * config.model.d_model * vb) * 2 : 0;
    const a2a = exchanges * one + (exchanges / 2) * etp;
    const w = expertWork(config, L, g.rows, vb, c.kernels !== undefined);
    const forward = computeUs(c, config, w);
    const expert = forward + computeUs(c, config, backwardOf(w)) + (config.plan.recompute === 'full' ? forward : 0);
    const exposed = overlap ? Math.max(0, a2a - denseUs) : a2a; // hidden behind another micro-batch's dense compute (MCore's 1F1B overlap, DeepEP)
    const cost = { one, a2a, exposed, expert, forward };
    once.set(g, cost);
    return cost;
  });
  const pace = per.reduce((best, x, i) => (x.exposed + x.expert > per[best]!.exposed + per[best]!.expert ? i : best), 0);
  const mean = per.reduce((a, x) => a + x.a2a + x.expert, 0) / per.length;
  const p = per[pace]!;
  const routed = rows.reduce((a, r) => a + r.routed, 0);
  const dropped = rows.reduce((a, r) => a + r.dropped, 0);
  const hier = c.all_to_all === 'hierarchical';
  return {
    block, a2a_us: p.one, comm_us: p.a2a, exposed_comm_us: p.exposed, expert_us: p.expert, expert_forward_us: p.forward,
    straggler_factor: mean > 0 ? (p.a2a + p.expert) / mean : 1, drop_fraction: routed > 0 ? dropped / routed : 0, groups_per_token: fan.groupsPerToken,
    bytes_intra_node: exchanges * (hier ? t.hierIntraBytes : t.intraBytes), bytes_inter_node: exchanges * (hier ? t.hierInterBytes : t.interBytes),
    per_gpu: per.map((x) => ({ a2a: x.a2a, expert: x.expert })),
  };
}
