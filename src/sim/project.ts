import { switchBlocks } from '../core/model/stages.js';
import { type Cluster } from './cluster.js';
import { allReduceUs } from './collectives/all-reduce.js';
import { allGatherUs, reduceScatterUs } from './collectives/gather-scatter.js';
import { computeUs, peakFlops, valueBytes } from './compute.js';
import { resolveLayout, type Layout } from './layout.js';
import { memoryUse, stageParams, type MemoryUse } from './memory.js';
import { paramBytes } from './param-bytes.js';
import { modelFlopsPerStep } from './model-flops.js';
import { stageTime, type StageTime } from './stage.js';
import type { SwitchLayerTime } from './layer-time.js';
import type { Workload } from './workload.js';

/** The parts of a step, ms; they add up to step_ms. Per-micro-batch parts are the slowest stage's, times the micro-batches. */
export interface Breakdown {
  dense: number;
  experts: number;
  /** exposed expert-parallel all-to-all */
  all_to_all: number;
  tensor_parallel: number;
  pipeline_p2p: number;
  /** context parallelism's K/V ring that attention does not hide (context-parallel.ts) */
  context_parallel: number;
  fsdp: number;
  recompute: number;
  /** what the host's issuing of kernels adds beyond the GPU's time (src/sim/host.ts) */
  host: number;
  /** 1F1B's fill and drain: (pp − 1)/vpp of the slowest stage's micro-batch */
  bubble: number;
  /** the gradient reduction (and the distributed optimizer's parameter gather) that the backward does not hide */
  data_parallel: number;
  optimizer: number;
  /** this machine's fixed cost per step (its calibration only) */
  other: number;
}

/** One collective of the step: how long one takes, how many, their time per step and what of it is exposed. */
export interface CollectiveUse {
  name: string;
  /** bytes per GPU of one (nccl-tests' size for all-gather, reduce-scatter, all-reduce; off-GPU bytes for the all-to-all) */
  bytes: number;
  us_each: number;
  per_step: number;
  ms_per_step: number;
}

/** One Switch layer, averaged over the projected steps (µs per micro-batch, the pacing GPU's). */
export type LayerProjection = Omit<SwitchLayerTime, 'per_gpu'> & { layer: number };

export interface Projection {
  cluster: string;
  gpus: number;
  all_to_all: Cluster['all_to_all'];
  dispatch: 'dropless' | 'padded';
  routing: 'recorded' | 'uniform';
  source: Workload['source'];
  /** the plan as projected; precision the one computed in (plan.precision, or fp32 on a cluster that computes in fp32) */
  plan: {
    tp: number; cp: number; pp: number; vpp: number; dp: number; ep: number; etp: number; edp: number;
    micro_batch: number; micro_batches: number; global_batch: number;
    shard: string; recompute: string; precision: string; overlap: string;
  };
  /** tokens one GPU routes per micro-batch (its sequence-parallel share) */
  tokens_per_gpu: number;
  step_ms: number;
  tokens_per_s: number;
  tokens_per_s_per_gpu: number;
  /** Megatron-LM's model FLOPs (3× forward, recompute not counted) per GPU per second, and over the plan's peak */
  model_tflops_per_gpu: number;
  mfu: number;
  /**
   * Megatron's bubble fraction, (pp − 1) / (vpp · micro-batches): the bubble over the ideal (bubble-free) time,
   * not over the step (that is breakdown_ms.bubble / step_ms); above 1 where the bubble outlasts the work
   */
  bubble_fraction: number;
  memory: MemoryUse;
  memory_gb_per_gpu: number;
  /** under the GPU's memory_gb (null when the cluster file does not say) */
  fits: boolean | null;
  /** exposed all-to-all over the step */
  dispatch_overhead_fraction: number;
  breakdown_ms: Breakdown;
  collectives: CollectiveUse[];
  /** communication on the critical path, and communication hidden behind compute, ms per step */
  exposed_comm_ms: number;
  overlapped_comm_ms: number;
  layers: LayerProjection[];
  steps: { step: number; step_ms: number }[];
  /** the run's own ms per step on this machine, when projecting a run */
  measured_ms_per_step?: number;
  /** what to read the figures with, one line each (this machine projected for another layout than it was calibrated on) */
  notes?: string[];
  /** for the trace; not written to projection.json */
  detail?: StepDetail;
}

/** The slowest stage's micro-batch, GPU by GPU, for the trace: its first GPUs and the busiest (at most 8 lanes). */
export interface StepDetail {
  gpus: number[];
  stage: StageTime;
  bubble_us: number;
  data_parallel_us: number;
  optimizer_us: number;
}

interface StepParts {
  stages: StageTime[];
  slowest: StageTime;
  pipelineUs: number;
  dpUs: number;
  dpExposedUs: number;
  optimizerUs: number;
}

/** The data-parallel gradient reduction after the last micro-batch's backward, per stage: dense grads over dp, experts' over edp. */
function dataParallelUs(c: Cluster, w: Workload, L: Layout, s: number): { total: number; parts: CollectiveUse[] } {
  const { dense, experts } = stageParams(w.config, L, s);
  const grad = paramBytes(valueBytes(c)).grad;
  const bytes = { dense: grad * dense, experts: grad * experts };
  const shard = w.config.plan.shard;
  const parts: CollectiveUse[] = [];
  const add = (name: string, us: number, b: number) => {
    if (us > 0) parts.push({ name, bytes: b, us_each: us, per_step: 1, ms_per_step: us / 1000 });
    return us;
  };
  let reduce = 0;
  let gather = 0;
  if (shard === 'none') {
    reduce += add('dp all_reduce (dense gradients)', allReduceUs(c, L.groups.dp, bytes.dense), bytes.dense);
    reduce += add('edp all_reduce (expert gradients)', allReduceUs(c, L.groups.edp, bytes.experts), bytes.experts);
  } else if (shard === 'optimizer') {
    reduce += add('dp reduce_scatter (dense gradients)', reduceScatterUs(c, L.groups.dp, bytes.dense), bytes.dense);
    reduce += add('edp reduce_scatter (expert gradients)', reduceScatterUs(c, L.groups.edp, bytes.experts), bytes.experts);
    gather += add('dp all_gather (dense parameters)', allGatherUs(c, L.groups.dp, bytes.dense), bytes.dense);
    gather += add('edp all_gather (expert parameters)', allGatherUs(c, L.groups.edp, bytes.experts), bytes.experts);
  }
  return { total: reduce + gather, parts };
}

function stepParts(c: Cluster, w: Workload, L: Layout, loads: Workload['steps'][number]['layers']): StepParts {
  const blocks = switchBlocks(w.config);
  const index = new Map(blocks.map((b, i) => [b, i] as const));
  const stages = L.stages.map((_, s) => stageTime(c, w.config, L, s, loads, index));
  const slowest = stages.reduce((a, b) => (b.total_us > a.total_us ? b : a));
  const pipelineUs = slowest.total_us * (L.microBatches + (L.pp - 1) / L.vpp);
  // gradients are reduced bucket by bucket during the last micro-batch's backward (Megatron-Core's overlap_grad_reduce),
  // the distributed optimizer's parameter gather during the next step's first forward (overlap_param_gather)
  const overlap = c.overlap_grad_reduce ?? true;
  let dpUs = 0;
  let dpExposedUs = 0;
  let optimizerUs = 0;
  stages.forEach((st, s) => {
    const dp = dataParallelUs(c, w, L, s);
    const hidden = overlap ? st.backward_us + (w.config.plan.shard === 'optimizer' ? st.forward_us : 0) : 0;
    dpUs = Math.max(dpUs, dp.total);
    dpExposedUs = Math.max(dpExposedUs, Math.max(0, dp.total - hidden));
    const { dense, experts } = stageParams(w.config, L, s);
    const stepped = w.config.plan.shard === 'none' ? dense + experts : dense / L.groups.dp.ranks + experts / L.edp; // dense state over dp · cp
    const traffic = stepped * paramBytes(valueBytes(c)).step_traffic;
    optimizerUs = Math.max(optimizerUs, computeUs(c, w.config, { kernels: [], attentionFlops: 0, attentionKernels: 0, bytes: traffic, fixedUs: 0 }));
  });
  return { stages, slowest, pipelineUs, dpUs, dpExposedUs, optimizerUs };
}

/** The busiest GPU's memory under a plan, as project() reports it (a plan search checks it before projecting). */
export const planMemory = (c: Cluster, cfg: Workload['config'], L: Layout): MemoryUse =>
  memoryUse(cfg, L, valueBytes(c), L.tokensPerGpu * cfg.moe.top_k);

/**
 * A step of the config's plan on the cluster: every stage's micro-batch (stageTime), the 1F1B
 * pipeline over micro-batches, T = t_slowest · (m + (pp − 1)/vpp), then the gradient reduction the
 * backward did not hide, AdamW (memory-bound), this machine's fixed cost. Each recorded step is
 * projected with its own routing; the figures are means over them.
 */
export function project(c: Cluster, w: Workload): Projection {
  const cfg = w.config;
  const L = resolveLayout(cfg, c, w.vocabSize);
  const stepsOut = w.steps.map((s) => {
    const parts = stepParts(c, w, L, s.layers);
    const stepUs = parts.pipelineUs + parts.dpExposedUs + parts.optimizerUs + (c.step_overhead_us ?? 0);
    return { step: s.step, stepUs, parts };
  });
  const mean = (f: (x: (typeof stepsOut)[number]) => number) => stepsOut.reduce((a, x) => a + f(x), 0) / stepsOut.length;
  const stepUs = mean((x) => x.stepUs);
  const m = L.microBatches;
  const part = (k: keyof StageTime) => mean((x) => (x.parts.slowest[k] as number) * m) / 1000;
  const breakdown: Breakdown = {
    dense: part('dense_us'), experts: part('experts_us'), all_to_all: part('a2a_us'), tensor_parallel: part('tensor_parallel_us'),
    pipeline_p2p: part('p2p_us'), context_parallel: part('context_parallel_us'), fsdp: part('fsdp_us'), recompute: part('recompute_us'), host: part('host_us'),
    bubble: mean((x) => (x.parts.slowest.total_us * (L.pp - 1)) / L.vpp) / 1000,
    data_parallel: mean((x) => x.parts.dpExposedUs) / 1000, optimizer: mean((x) => x.parts.optimizerUs) / 1000, other: (c.step_overhead_us ?? 0) / 1000,
  };
  const first = stepsOut[0]!.parts;
  // one row per collective: the layers' alike collectives together (µs and bytes their mean)
  const byName = new Map<string, CollectiveUse>();
  for (const x of first.slowest.collectives) {
    const row = byName.get(x.name) ?? { name: x.name, bytes: 0, us_each: 0, per_step: 0, ms_per_step: 0 };
    const n = x.count * m;
    row.bytes = (row.bytes * row.per_step + x.bytes * n) / (row.per_step + n);
    row.ms_per_step += (x.us * n) / 1000;
    row.per_step += n;
    row.us_each = (row.ms_per_step * 1000) / row.per_step;
    byName.set(x.name, row);
  }
  const collectives: CollectiveUse[] = [...byName.values(), ...dataParallelUs(c, w, L, first.stages.indexOf(first.slowest)).parts];
  const commMs = collectives.reduce((a, x) => a + x.ms_per_step, 0);
  const exposedMs = breakdown.all_to_all + breakdown.tensor_parallel + breakdown.pipeline_p2p +
    breakdown.context_parallel + breakdown.fsdp + breakdown.data_parallel;
  const switchLayers = first.stages.flatMap((st) => st.switch_layers.map((x) => x.block));
  const byBlock = stepsOut.map((x) => new Map(x.parts.stages.flatMap((st) => st.switch_layers).map((y) => [y.block, y] as const)));
  const layers: LayerProjection[] = switchLayers.map((block, i) => {
    const all = byBlock.map((step) => step.get(block)!);
    const avg = (f: (y: SwitchLayerTime) => number) => all.reduce((a, y) => a + f(y), 0) / all.length;
    return {
      layer: i, block, a2a_us: avg((y) => y.a2a_us), comm_us: avg((y) => y.comm_us),
      exposed_comm_us: avg((y) => y.exposed_comm_us), expert_us: avg((y) => y.expert_us),
      expert_forward_us: avg((y) => y.expert_forward_us),
      straggler_factor: avg((y) => y.straggler_factor), drop_fraction: avg((y) => y.drop_fraction),
      groups_per_token: avg((y) => y.groups_per_token), bytes_intra_node: avg((y) => y.bytes_intra_node),
      bytes_inter_node: avg((y) => y.bytes_inter_node),
    };
  });
  const memory = planMemory(c, cfg, L);
  const stepS = stepUs / 1e6;
  const tokens = L.globalBatch * L.seqLen;
  const modelFlops = modelFlopsPerStep(cfg, L.globalBatch, L.vocab);
  const busiest = first.slowest.switch_layers[0]?.per_gpu.reduce((b, x, i, all) => (x.a2a + x.expert > all[b]!.a2a + all[b]!.expert ? i : b), 0) ?? 0;
  const traced = [...new Set([...Array.from({ length: Math.min(L.gpus / L.pp, 7) }, (_, i) => i), busiest])].sort((a, b) => a - b);
  return {
    cluster: c.name, gpus: L.gpus, all_to_all: c.all_to_all, dispatch: cfg.plan.dispatch,
    routing: w.source === 'run' ? cfg.plan.routing : 'uniform', source: w.source,
    plan: {
      tp: L.tp, cp: L.cp, pp: L.pp, vpp: L.vpp, dp: L.dp, ep: L.ep, etp: L.etp, edp: L.edp,
      micro_batch: L.microBatch, micro_batches: m, global_batch: L.globalBatch,
      shard: cfg.plan.shard, recompute: cfg.plan.recompute,
      precision: cfg.plan.precision === 'fp8' ? 'fp8' : c.precision, overlap: cfg.plan.overlap,
    },
    tokens_per_gpu: L.tokensPerGpu,
    step_ms: stepUs / 1000, tokens_per_s: tokens / stepS, tokens_per_s_per_gpu: tokens / stepS / L.gpus,
    model_tflops_per_gpu: modelFlops / stepS / L.gpus / 1e12, mfu: modelFlops / (L.gpus * peakFlops(c, cfg) * stepS),
    bubble_fraction: (L.pp - 1) / (L.vpp * m),
    memory, memory_gb_per_gpu: memory.total_gb, fits: c.gpu.memory_gb === undefined ? null : memory.total_gb <= c.gpu.memory_gb,
    dispatch_overhead_fraction: breakdown.all_to_all / (stepUs / 1000),
    breakdown_ms: breakdown, collectives, exposed_comm_ms: exposedMs, overlapped_comm_ms: Math.max(0, commMs - exposedMs),
    layers, steps: stepsOut.map((x) => ({ step: x.step, step_ms: x.stepUs / 1000 })), measured_ms_per_step: w.measured_ms_per_step,
    detail: {
      gpus: traced, stage: first.slowest, bubble_us: breakdown.bubble * 1000,
      data_parallel_us: breakdown.data_parallel * 1000, optimizer_us: breakdown.optimizer * 1000,
    },
  };
}
