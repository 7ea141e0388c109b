import type { Config } from '../config/defaults.js';
import { configParamCounts, isSwitchBlock } from '../model/params.js';
import { exchangeOverheadUs, gpuCount, interpolate, peakFlops, valueBytes, type Cluster } from './cluster.js';
import { allReduceUs, flatA2aUs, hierarchicalA2aUs } from './collective.js';
import { layerTraffic, type LayerTraffic } from './traffic.js';
import { capacityOf, tokensPerGroup, type LayerLoad, type Workload } from './workload.js';
import { maxOf } from '../util/extremes.js';

/** One Switch layer of one projected step (µs; per GPU quantities are the slowest GPU's unless said). */
export interface LayerProjection {
  layer: number;
  /** all GPUs, one step (four all-to-alls: dispatch and combine, forward and backward) */
  bytes_intra_node: number;
  bytes_inter_node: number;
  /** the four all-to-alls, paced by the slowest GPU */
  comm_us: number;
  /** the experts' forward and backward on the busiest GPU */
  compute_us: number;
  /** the slowest GPU's (all-to-all + experts) over the mean GPU's: 1 when routing is balanced */
  straggler_factor: number;
  /** of comm_us, what compute does not hide (all of it without micro-batches) */
  exposed_comm_us: number;
  /** token-choices over capacity, dropped */
  drop_fraction: number;
}

export interface StepProjection {
  step: number;
  step_ms: number;
  dense_ms: number;
  expert_ms: number;
  a2a_ms: number;
  allreduce_ms: number;
  optimizer_ms: number;
  /** what no part models: the cluster's fixed cost per step (this machine's calibration only) */
  other_ms: number;
  layers: LayerProjection[];
}

export interface Projection {
  cluster: string;
  gpus: number;
  all_to_all: Cluster['all_to_all'];
  dispatch: 'recorded' | 'padded';
  source: Workload['source'];
  tokens_per_gpu: number;
  /** means over the projected steps */
  step_ms: number;
  tokens_per_s: number;
  mfu: number;
  dispatch_overhead_fraction: number;
  breakdown_ms: { dense: number; experts: number; all_to_all: number; allreduce: number; optimizer: number; other: number };
  layers: LayerProjection[];
  steps: StepProjection[];
  /** the run's own ms per step on this machine, when projecting a run */
  measured_ms_per_step?: number;
  /** for the trace; not written to projection.json */
  detail?: StepDetail;
}

/** One GPU's work: matmul FLOPs (and the size of its typical matmul), bytes of memory-bound traffic, fixed costs. */
export interface Work {
  flops: number;
  /** FLOPs of one typical matmul, for the efficiency curve */
  matmul: number;
  /** bytes the elementwise ops (layer norms, residual adds, softmax, activations) and AdamW read and write */
  bytes: number;
  /** per-block fixed costs (kernel launches; on this machine, tfjs's per-op costs), µs */
  fixedUs: number;
}

/**
 * values read or written per token of one block by its memory-bound work, forward: two layer norms (4d),
 * two residual adds (6d), and attention as one fused kernel (flash-style, as this project's own: the
 * scores never reach memory) reading q, k, v and writing its output (4d)
 */
const blockValues = (c: Config) => 14 * c.model.d_model;

/**
 * One GPU's dense model on its S tokens, forward and backward (backward twice the forward): matmul
 * FLOPs, and the elementwise traffic beside them (the loss's softmax over the vocabulary, per block
 * blockValues, and a dense block's activation over d_ff; the experts' activations are counted with
 * the experts). Optimizer bytes are added by the caller, which knows the GPU's parameters.
 */
export function denseWork(c: Config, vocab: number, bytesPerValue: number): Work {
  const { d_model: d, d_ff: dff, n_layers: L } = c.model;
  const S = tokensPerGroup(c);
  const T = c.data.seq_len;
  let f = 2 * S * d * vocab; // LM head
  let values = 4 * S * vocab; // log-softmax and its gradient's inputs
  for (let l = 0; l < L; l++) {
    f += 2 * S * 4 * d * d + 2 * S * T * d; // q, k, v, out projections; causal scores and values (half of 2·2·S·T·d)
    f += isSwitchBlock(c, l) ? 2 * S * d * c.moe.n_experts : 2 * S * 2 * d * dff; // router, or a dense FFN
    values += S * (blockValues(c) + (isSwitchBlock(c, l) ? 0 : 2 * dff));
  }
  return { flops: 3 * f, matmul: 2 * S * d * d, bytes: 3 * values * bytesPerValue, fixedUs: 0 };
}

/** An expert's forward and backward over n rows: 4·n·d·d_ff FLOPs forward, twice that backward; its activation over d_ff read and written, three times. */
export const expertWork = (c: Config, rows: number, bytesPerValue: number): Work => ({
  flops: 12 * rows * c.model.d_model * c.model.d_ff,
  matmul: 2 * rows * c.model.d_model * c.model.d_ff,
  bytes: 3 * 2 * rows * c.model.d_ff * bytesPerValue,
  fixedUs: 0,
});

/**
 * Compute time on one GPU: FLOPs at peak × the efficiency of their matmul size, plus the memory-bound
 * bytes at HBM bandwidth, plus fixed costs. On this machine, devices beyond its cores take turns, and
 * threads computing together each run at parallel_efficiency of their speed alone.
 */
export function computeUs(c: Cluster, w: Work): number {
  const N = gpuCount(c);
  const parallel = N > 1 && c.gpu.parallel_efficiency ? interpolate(c.gpu.parallel_efficiency as [number, number][], N) : 1;
  const share = Math.max(1, N / (c.gpu.cores ?? Infinity)) / parallel;
  const efficiency = interpolate(c.gpu.matmul_efficiency as [number, number][], w.matmul);
  const flopsUs = w.flops > 0 ? (w.flops / (peakFlops(c) * efficiency)) * 1e6 : 0;
  return (w.fixedUs + flopsUs + (w.bytes / (c.gpu.hbm_gbps * 1e9)) * 1e6) * share;
}

/** One all-to-all for GPU i; this machine adds its fitted cost of synchronising threads. */
const a2aUs = (c: Cluster, t: LayerTraffic, i: number) =>
  (c.all_to_all === 'flat' ? flatA2aUs(c, t.flat[i]!) : hierarchicalA2aUs(c, t.hier[i]!.phase1, t.hier[i]!.phase2)) + exchangeOverheadUs(c);

/** The first projected step GPU by GPU, for its trace: GPUs 0.. and the busiest (at most 8 lanes). */
export interface StepDetail {
  gpus: number[];
  dense_us: number;
  allreduce_us: number;
  optimizer_us: number;
  /** per Switch layer, per traced GPU: one all-to-all's µs, and its experts' forward+backward µs; and the slowest GPU's (the pace) */
  layers: { a2a: number[]; expert: number[]; a2aPace: number; expertPace: number }[];
}

function projectLayer(c: Cluster, w: Workload, load: LayerLoad, index: number, dispatch: Projection['dispatch'], denseUsPerLayer: number): { p: LayerProjection; expertUs: number; commUs: number; per: { a2a: number; expert: number }[] } {
  const rowBytes = w.config.model.d_model * valueBytes(c);
  const C = capacityOf(w.config);
  const kept = load.routed.map((row) => row.map((n) => (dispatch === 'padded' ? C : Math.min(n, C))));
  const routed = load.routed.flat().reduce((a, b) => a + b, 0);
  const dropped = load.routed.flat().reduce((a, n) => a + Math.max(0, n - C), 0);
  const t = layerTraffic(c, kept, rowBytes);
  const N = t.rows.length;
  // per GPU: four all-to-alls of this pattern (dispatch, combine; forward, backward: the same bytes, reversed) and its experts
  const per = t.rows.map((rows, i) => {
    const a2a = 4 * a2aUs(c, t, i);
    const expert = computeUs(c, expertWork(w.config, rows, valueBytes(c)));
    return { a2a, expert };
  });
  const commUs = maxOf(per.map((x) => x.a2a));
  const expertUs = maxOf(per.map((x) => x.expert));
  const mean = per.reduce((a, x) => a + x.a2a + x.expert, 0) / N;
  const M = w.config.parallel.microbatches;
  // with M micro-batches, an exchange overlaps the other micro-batches' dense work (at most all of it but one micro-batch's share)
  const exposed = M > 1 ? Math.max(commUs / M, commUs - (denseUsPerLayer * (M - 1)) / M) : commUs;
  return {
    p: {
      layer: index, bytes_intra_node: 4 * t.intraBytes, bytes_inter_node: 4 * t.interBytes, comm_us: commUs, compute_us: expertUs,
      straggler_factor: mean > 0 ? maxOf(per.map((x) => x.a2a + x.expert)) / mean : 1, exposed_comm_us: exposed,
      drop_fraction: routed > 0 ? dropped / routed : 0,
    },
    expertUs, commUs: exposed, per,
  };
}

/**
 * A step of the paper's expert-parallel layout on the cluster: every GPU runs the dense model on its
 * group's S tokens (data parallel: a ring all-reduce of the dense gradients per step) and its experts
 * on the rows routed to them; per Switch layer two all-to-alls forward and two backward, each paced
 * by the slowest GPU, then AdamW (memory-bound: ~28 bytes of HBM traffic per parameter).
 */
export function project(c: Cluster, w: Workload, dispatch: Projection['dispatch'] = 'recorded'): Projection {
  const N = gpuCount(c);
  const cfg = w.config;
  const S = tokensPerGroup(cfg);
  const dense = denseWork(cfg, w.vocabSize, valueBytes(c));
  const denseUs = computeUs(c, { ...dense, fixedUs: cfg.model.n_layers * (c.gpu.block_overhead_us ?? 0) });
  const counts = configParamCounts(cfg, w.vocabSize);
  const perExpert = 2 * cfg.model.d_model * cfg.model.d_ff + cfg.model.d_ff + cfg.model.d_model;
  const switchLayers = w.steps[0]!.layers.length;
  const denseParams = counts.total - switchLayers * cfg.moe.n_experts * perExpert;
  const localParams = denseParams + (switchLayers * cfg.moe.n_experts * perExpert) / Math.min(N, cfg.moe.n_experts) / Math.max(1, N / cfg.moe.n_experts);
  const allreduce = allReduceUs(c, denseParams * valueBytes(c));
  const optimizer = computeUs(c, { flops: 0, matmul: 1, bytes: localParams * 28, fixedUs: 0 });
  let detail: StepDetail | undefined;
  const steps: StepProjection[] = w.steps.map((s) => {
    const layers = s.layers.map((l, i) => projectLayer(c, w, l, i, dispatch, denseUs / s.layers.length));
    if (!detail) {
      const load = layers[0]!.per.map((_, i) => ({ i, t: layers.reduce((a, l) => a + l.per[i]!.a2a + l.per[i]!.expert, 0) }));
      const busiest = load.reduce((a, b) => (b.t > a.t ? b : a)).i;
      const gpus = [...new Set([...Array.from({ length: Math.min(N, 7) }, (_, i) => i), busiest])].sort((a, b) => a - b);
      detail = { gpus, dense_us: denseUs, allreduce_us: allreduce, optimizer_us: optimizer, layers: layers.map((l) => ({
        a2a: gpus.map((g) => l.per[g]!.a2a / 4), expert: gpus.map((g) => l.per[g]!.expert),
        a2aPace: maxOf(l.per.map((x) => x.a2a)) / 4, expertPace: maxOf(l.per.map((x) => x.expert)),
      })) };
    }
    const expert = layers.reduce((a, x) => a + x.expertUs, 0);
    const a2a = layers.reduce((a, x) => a + x.commUs, 0);
    const total = denseUs + expert + a2a + allreduce + optimizer + (c.step_overhead_us ?? 0);
    return {
      step: s.step, step_ms: total / 1000, dense_ms: denseUs / 1000, expert_ms: expert / 1000, a2a_ms: a2a / 1000, allreduce_ms: allreduce / 1000, optimizer_ms: optimizer / 1000,
      other_ms: (c.step_overhead_us ?? 0) / 1000, layers: layers.map((x) => x.p),
    };
  });
  const mean = (f: (s: StepProjection) => number) => steps.reduce((a, s) => a + f(s), 0) / steps.length;
  const stepMs = mean((s) => s.step_ms);
  // useful FLOPs: every GPU's dense work and the rows its experts really computed (not padding)
  const C = capacityOf(cfg);
  const rowsPerGpu = w.steps.reduce((a, s) => a + s.layers.reduce((b, l) => b + l.routed.reduce((x, row) => x + row.reduce((y, n) => y + Math.min(n, C), 0), 0) / l.routed.length, 0), 0) / w.steps.length;
  const modelFlops = N * (dense.flops + 12 * rowsPerGpu * cfg.model.d_model * cfg.model.d_ff);
  const layers = steps[0]!.layers.map((_, l) => {
    const all = steps.map((s) => s.layers[l]!);
    const avg = (f: (x: LayerProjection) => number) => all.reduce((a, x) => a + f(x), 0) / all.length;
    return {
      layer: l, bytes_intra_node: avg((x) => x.bytes_intra_node), bytes_inter_node: avg((x) => x.bytes_inter_node), comm_us: avg((x) => x.comm_us), compute_us: avg((x) => x.compute_us),
      straggler_factor: avg((x) => x.straggler_factor), exposed_comm_us: avg((x) => x.exposed_comm_us), drop_fraction: avg((x) => x.drop_fraction),
    };
  });
  return {
    cluster: c.name, gpus: N, all_to_all: c.all_to_all, dispatch, source: w.source, tokens_per_gpu: S,
    step_ms: stepMs, tokens_per_s: (N * S) / (stepMs / 1000), mfu: modelFlops / (N * peakFlops(c) * (stepMs / 1000)),
    dispatch_overhead_fraction: mean((s) => s.a2a_ms) / stepMs,
    breakdown_ms: { dense: mean((s) => s.dense_ms), experts: mean((s) => s.expert_ms), all_to_all: mean((s) => s.a2a_ms), allreduce: mean((s) => s.allreduce_ms), optimizer: mean((s) => s.optimizer_ms), other: mean((s) => s.other_ms) },
    layers, steps, measured_ms_per_step: w.measured_ms_per_step, detail,
  };
}
