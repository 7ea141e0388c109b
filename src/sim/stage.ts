import type { Config } from '../core/config/defaults.js';
import type { Cluster } from './cluster.js';
import { allGatherUs } from './collectives/gather-scatter.js';
import { sendUs } from './collectives/p2p.js';
import { computeUs, valueBytes } from './compute.js';
import type { Layout } from './layout.js';
import { layerRows } from './routing.js';
import { layerTraffic } from './traffic.js';
import { fanout } from './fanout.js';
import { backwardOf, expertWork } from './work.js';
import { blockTime, type BlockTime, type Note } from './block.js';
import { blockParams, isSwitchBlock } from '../core/model/params.js';
import { cpExchange } from './context-parallel.js';
import { moeExchange } from './dispatch.js';
import { endsTime } from './ends.js';
import { exchangesPerLayer, expertRecomputeWork } from './recompute.js';
import type { LayerLoad } from './workload.js';
import type { SwitchLayerTime } from './layer-time.js';

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
  /** context parallelism's K/V ring that attention does not hide (context-parallel.ts) */
  context_parallel_us: number;
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
  const perStage = L.gpus / L.pp;
  const collectives: StageTime['collectives'] = [];
  const note = (name: string, us: number, count: number, bytes: number) => {
    if (us > 0 && count > 0) collectives.push({ name, us, count, bytes });
  };
  const out: StageTime = {
    stage: s, dense_us: 0, recompute_us: 0, tensor_parallel_us: 0, fsdp_us: 0, experts_us: 0, a2a_us: 0, p2p_us: 0,
    context_parallel_us: 0, host_us: 0, total_us: 0,
    backward_us: 0, forward_us: 0, switch_layers: [], collectives,
  };
  const cp = cpExchange(c, config, L, vb); // the same for every block: its attention's K/V ring (context-parallel.ts)
  for (const l of L.stages[s]!) {
    out.context_parallel_us += cp.exposed_us;
    note('cp send/recv (K/V ring)', cp.send_us, cp.sends, cp.bytes);
    // dense compute, tensor parallelism, FSDP and the host's issuing (block.ts); the Switch layer's exchange and experts
    const load = loads[switchIndex.get(l)!];
    const bt = blockTimeOnce(c, config, L, l, load, (denseUs) => switchLayerOnce(c, config, L, l, load, denseUs, perStage), note);
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
      const exchanges = exchangesPerLayer(config);
      const name = config.plan.dispatcher === 'alltoall' ? `all_to_all (${c.all_to_all})` : config.plan.dispatcher;
      note(`ep ${name}`, layer.a2a_us, exchanges, (layer.bytes_intra_node + layer.bytes_inter_node) / exchanges / perStage);
    }
  }
  // the embedding on the first rank, the output layer and loss (and multi-token prediction's) on the last (ends.ts)
  const ends = endsTime(c, config, L, s);
  out.dense_us += ends.forward_us + ends.backward_us;
  out.backward_us += ends.backward_us;
  out.forward_us += ends.forward_us;
  out.host_us += ends.host_us;
  if (L.pp > 1) {
    // activations forward and gradients backward at each of the vpp chunk boundaries, sequence-parallel shards
    const send = sendUs(c, actBytes / L.tp, L.ppCrossesNodes);
    out.p2p_us = 2 * L.vpp * send;
    note('pp send/recv', send, 2 * L.vpp, actBytes / L.tp);
  }
  out.total_us = out.dense_us + out.recompute_us + out.tensor_parallel_us + out.fsdp_us + out.experts_us + out.a2a_us +
    out.p2p_us + out.context_parallel_us + out.host_us;
  return out;
}

/**
 * Within one projection, blocks alike (both Switch or both dense, both or neither multi-token prediction's, the same
 * parameters, the same load object) take the same time: blockTime reads its block only through those. Each is
 * computed once per Layout, its collectives noted again for every block.
 */
type KnownBlock = { bt: BlockTime; notes: Parameters<Note>[] };
const blockTimes = new WeakMap<Layout, { c: Cluster; config: Config; byKind: Map<LayerLoad | undefined, Map<string, KnownBlock>> }>();
function blockTimeOnce(c: Cluster, config: Config, L: Layout, l: number, load: LayerLoad | undefined,
  switchLayer: (denseUs: number) => SwitchLayerTime, note: Note): BlockTime {
  let seen = blockTimes.get(L);
  if (!seen || seen.c !== c || seen.config !== config) blockTimes.set(L, (seen = { c, config, byKind: new Map() }));
  const byLoad = seen.byKind.get(load) ?? new Map<string, KnownBlock>();
  seen.byKind.set(load, byLoad);
  const kind = `${isSwitchBlock(config, l)} ${l >= config.model.n_layers} ${JSON.stringify(blockParams(config, l))}`;
  const hit = byLoad.get(kind);
  if (hit) {
    for (const n of hit.notes) note(...n);
    return { ...hit.bt, layer: hit.bt.layer ? { ...hit.bt.layer, block: l } : undefined };
  }
  const notes: Parameters<Note>[] = [];
  const bt = blockTime(c, config, L, l, switchLayer, (...n) => {
    notes.push(n);
    note(...n);
  });
  byLoad.set(kind, { bt, notes });
  return bt;
}

/**
 * Within one projection (project() makes a Layout per call), Switch layers with the same load object and the same
 * dense time cost the same: switchLayer reads its block only to name it. So each is computed once per Layout.
 */
const computed = new WeakMap<Layout, { c: Cluster; config: Config; byLoad: Map<LayerLoad | undefined, Map<number, SwitchLayerTime>> }>();
function switchLayerOnce(
  c: Cluster, config: Config, L: Layout, block: number, load: LayerLoad | undefined, denseUs: number, perStage: number,
): SwitchLayerTime {
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
  const exchanges = exchangesPerLayer(config); // dispatch and combine, forward and backward (and forward again: recompute.ts)
  const overlap = config.plan.overlap === 'a2a' && L.microBatches >= 2;
  // GPUs with one traffic object (traffic.ts shares it between alike GPUs) cost the same: computed once
  const once = new Map<unknown, { one: number; a2a: number; exposed: number; expert: number; forward: number }>();
  const per = t.gpus.map((g) => {
    const seen = once.get(g);
    if (seen) return seen;
    const x = moeExchange(c, config, L, g, vb); // by plan.dispatcher, the forward dispatch at plan.dispatch_fwd_dtype (dispatch.ts)
    const one = x.one_us;
    // with expert tensor parallelism the etp ranks all-gather their received rows: each computes every row of the
    // group (etp × its own) for its 1/etp of each expert's hidden size (Megatron-Core's ETP all-gather before the experts)
    const rows = L.etp > 1 ? g.rows.map((r) => r * L.etp) : g.rows;
    const gathered = rows.reduce((a, b) => a + b, 0) * config.model.d_model * vb;
    const etp = L.etp > 1 ? allGatherUs(c, L.groups.etp, gathered) * 2 : 0; // the gather and its reduce-scatter
    const a2a = x.total_us + (exchanges / 2) * etp;
    const w = expertWork(config, L, rows, vb, c.kernels !== undefined);
    const forward = computeUs(c, config, w);
    const again = expertRecomputeWork(config, L, rows, w, vb); // full, moe or moe_act (recompute.ts)
    const expert = forward + computeUs(c, config, backwardOf(w)) + (again === w ? forward : again ? computeUs(c, config, again) : 0);
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
