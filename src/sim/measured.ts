import { join } from 'node:path';
import { missingAs, readJson } from '../core/util/fs.js';

/**
 * The measured breakdown of a profiled run (its profile.json), in the projection's parts: an spmd
 * profile maps one to one (the exchange's pack, unpack and barrier waits as all_to_all); a coordinator
 * profile has its critical-path split (coordinator compute as dense, exposed expert compute, dispatch
 * overhead as all_to_all). Undefined when the run was not profiled.
 */
export function measuredBreakdown(dir: string): Record<string, number> | undefined {
  const f = join(dir, 'profile.json');
  const p = readJson<{
    devices?: { dense_ms?: number; expert_ms?: number; pack_unpack_ms?: number; barrier_wait_ms?: number; allreduce_ms?: number; optimizer_ms?: number }[];
    split?: { coordinator_compute_ms: number; dispatch_overhead_ms: number; exposed_expert_ms: number };
  }, undefined>(f, missingAs(undefined));
  if (!p) return undefined;
  if (p.split) return { dense: p.split.coordinator_compute_ms, experts: p.split.exposed_expert_ms, all_to_all: p.split.dispatch_overhead_ms };
  // an spmd profile: the projection's parts, the all-reduce as its data_parallel
  const ds = p.devices?.filter((d) => d.dense_ms !== undefined) ?? [];
  if (ds.length === 0) return undefined;
  const mean = (f: (d: (typeof ds)[number]) => number) => ds.reduce((a, d) => a + f(d), 0) / ds.length;
  return {
    dense: mean((d) => d.dense_ms!), experts: mean((d) => d.expert_ms!), all_to_all: mean((d) => d.pack_unpack_ms! + d.barrier_wait_ms!),
    data_parallel: mean((d) => d.allreduce_ms!), optimizer: mean((d) => d.optimizer_ms!),
  };
}
