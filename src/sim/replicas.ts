import { ConfigError } from '../core/config/errors.js';
import type { Cluster } from './cluster.js';
import { commGroup } from './collectives/group.js';
import { contiguousLoads, placeExperts, stragglerFactor, type Placement } from './eplb.js';
import { resolveLayout } from './layout.js';
import { project, type Projection } from './project.js';
import type { Workload } from './workload.js';

/** How plan.redundant_experts placed the copies, per Switch layer and over them. */
export interface ReplicaReport {
  redundant: number;
  policy: Placement['policy'];
  /** per Switch layer: max GPU load over the mean of its EP group, as switch-sim places experts and with the copies */
  layers: { before: number; after: number }[];
  /** their means over the layers */
  straggler_before: number;
  straggler_after: number;
}

/**
 * The workload with plan.redundant_experts copies (eplb.ts), as the projection reads it: each copy is an expert
 * slot of its own, slot j of the EP group's GPU t at t·S + j (S = (E + R) / ep slots a GPU, switch-sim's order),
 * receiving its expert's recorded tokens ÷ its copies, step by step. The placement of each Switch layer is made
 * once from its loads over all recorded steps (as EPLB places from a history of loads). moe.n_experts becomes the
 * slots, E + R: the copies hold weights (memory) and the router is costed over E + R outputs (a slight overcount).
 */
export function withReplicas(w: Workload, cluster: Cluster, ep: number, etp: number): { workload: Workload; report?: ReplicaReport } {
  const R = w.config.plan.redundant_experts;
  if (R === 0) return { workload: w };
  if (w.source !== 'run' || w.config.plan.routing !== 'recorded') {
    throw new ConfigError('plan.redundant_experts must be 0 without a run\'s recorded routing (simulate --run, plan.routing '
      + `recorded): copies are placed by the loads it recorded (got ${R})`);
  }
  const E = w.config.moe.n_experts;
  const nodes = commGroup(cluster, ep, etp).nodes;
  const layers = w.steps[0]!.layers.length;
  const placements = Array.from({ length: layers }, (_, i) => {
    const loads = new Array<number>(E).fill(0);
    for (const step of w.steps) for (const row of step.layers[i]!.routed) row.forEach((n, e) => (loads[e]! += n));
    const placement = placeExperts(loads, { redundant: R, gpus: ep, groups: w.config.moe.route_groups, nodes });
    return { loads, placement, slots: placement.gpus.flat() };
  });
  const steps = w.steps.map((step) => ({
    ...step,
    layers: step.layers.map((load, i) => {
      const { placement, slots } = placements[i]!;
      return { ...load, routed: load.routed.map((row) => slots.map((e) => row[e]! / placement.copies[e]!)) };
    }),
  }));
  const perLayer = placements.map(({ loads, placement }) => ({
    before: stragglerFactor(contiguousLoads(loads, ep)), after: stragglerFactor(placement.gpuLoads),
  }));
  const mean = (f: (x: { before: number; after: number }) => number) => perLayer.reduce((a, x) => a + f(x), 0) / perLayer.length;
  return {
    workload: { ...w, config: { ...w.config, moe: { ...w.config.moe, n_experts: E + R } }, steps },
    report: {
      redundant: R, policy: placements[0]!.placement.policy, layers: perLayer,
      straggler_before: mean((x) => x.before), straggler_after: mean((x) => x.after),
    },
  };
}

/**
 * `simulate --run` with plan.redundant_experts: the projection with the copies, and a line with the straggler
 * factor and the step without and with them (the EP group as the plan resolves it on the cluster).
 */
export function replicaProjection(cluster: Cluster, w: Workload): { projection: Projection; notes: string[] } {
  const L = resolveLayout(w.config, cluster, w.vocabSize);
  const pinned = { ...w, config: { ...w.config, plan: { ...w.config.plan, ep: L.ep } } };
  const before = project(cluster, { ...pinned, config: { ...pinned.config, plan: { ...pinned.config.plan, redundant_experts: 0 } } });
  const { workload, report } = withReplicas(pinned, cluster, L.ep, L.etp);
  const projection = project(cluster, workload);
  const r = report!;
  return {
    projection,
    notes: [`redundant experts ${r.redundant} (EPLB, ${r.policy} policy, ep ${L.ep}): straggler factor (max GPU load over `
      + `the EP group's mean, mean of ${r.layers.length} Switch layers) ${r.straggler_before.toFixed(3)} → `
      + `${r.straggler_after.toFixed(3)}; step ${before.step_ms.toFixed(1)} → ${projection.step_ms.toFixed(1)} ms`],
  };
}
