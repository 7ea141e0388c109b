import { ConfigError } from '../../core/config/errors.js';
import type { Cluster } from '../cluster.js';
import { resolveLayout } from '../layout.js';
import { planMemory, project, type Breakdown } from '../project.js';
import { withReplicas } from '../replicas.js';
import type { Workload } from '../workload.js';
import type { Plan } from './context.js';

/** What the search keeps of one plan's projection (project()'s own figures, unchanged). */
export interface PlanResult {
  step_ms: number;
  tokens_per_s_per_gpu: number;
  mfu: number;
  memory_gb_per_gpu: number;
  /** under the GPU's memory (null: the cluster file does not say) */
  fits: boolean | null;
  bubble_fraction: number;
  breakdown_ms: Breakdown;
  /** the slowest Switch layer's straggler factor (1: balanced) */
  straggler_factor: number;
}

/** A plan switch-sim's layout refuses (a rule of its own beyond Megatron-Core's): the one line it gave. */
export interface PlanRefused {
  refused: string;
}

/** A plan whose memory (the full model, project()'s own figure) is over the GPU's: not projected. */
export interface PlanOver {
  over_gb: number;
}

/**
 * The workload with alike Switch layers sharing one load object (the same counts, hence the same projection:
 * stage.ts then computes each once a projection). Uniform routing has one load for every layer.
 */
export function shareAlikeLoads(w: Workload): Workload {
  const seen = new Map<string, Workload['steps'][number]['layers'][number]>();
  const steps = w.steps.map((s) => ({
    ...s,
    layers: s.layers.map((l) => {
      const key = JSON.stringify([l.routed, l.groupsPerToken, l.expertGroups]);
      const known = seen.get(key);
      if (known) return known;
      seen.set(key, l);
      return l;
    }),
  }));
  return { ...w, steps };
}

/** Workloads with redundant experts placed, by workload and by what the placement depends on (ep, etp, copies). */
const placed = new WeakMap<Workload, Map<string, Workload>>();

function planWorkload(cluster: Cluster, w: Workload, plan: Plan): Workload {
  const own = { ...w, config: { ...w.config, plan } };
  if (plan.redundant_experts === 0) return own;
  const byPlacement = placed.get(w) ?? new Map<string, Workload>();
  placed.set(w, byPlacement);
  const key = `${plan.ep},${plan.etp},${plan.redundant_experts}`;
  let replicated = byPlacement.get(key);
  if (!replicated) byPlacement.set(key, (replicated = shareAlikeLoads(withReplicas(own, cluster, plan.ep, plan.etp).workload)));
  return { ...replicated, config: { ...replicated.config, plan } };
}

/** One plan projected as `simulate` projects it: the workload's config with this plan (its redundant experts placed). */
export function projectPlan(cluster: Cluster, w: Workload, plan: Plan): PlanResult | PlanRefused | PlanOver {
  try {
    const own = planWorkload(cluster, w, plan);
    const memory = planMemory(cluster, own.config, resolveLayout(own.config, cluster, own.vocabSize)).total_gb;
    if (cluster.gpu.memory_gb !== undefined && memory > cluster.gpu.memory_gb) return { over_gb: memory };
    const p = project(cluster, own);
    return {
      step_ms: p.step_ms, tokens_per_s_per_gpu: p.tokens_per_s_per_gpu, mfu: p.mfu, memory_gb_per_gpu: p.memory_gb_per_gpu,
      fits: p.fits, bubble_fraction: p.bubble_fraction, breakdown_ms: p.breakdown_ms,
      straggler_factor: p.layers.reduce((a, l) => Math.max(a, l.straggler_factor), 1),
    };
  } catch (e) {
    if (e instanceof ConfigError) return { refused: e.message.replace(/^config error: /, '') };
    throw e;
  }
}
