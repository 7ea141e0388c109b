import YAML from 'yaml';
import { ConfigError, show } from '../core/config/errors.js';
import { resolveConfig } from '../core/config/load.js';
import { validateCluster, type Cluster } from './cluster.js';
import { clusterFor } from './machine.js';
import { project } from './project.js';
import { checkReplay } from './replay.js';
import { uniformWorkload, type Workload } from './workload.js';
import { maxOf } from '../core/util/extremes.js';

/** One row of a what-if table. */
export interface VaryRow {
  value: unknown;
  step_ms: number;
  tokens_per_s: number;
  mfu: number;
  dispatch_overhead_fraction: number;
  drop_fraction: number;
  straggler_factor: number;
  memory_gb_per_gpu: number;
}

/** `--vary key=v1,v2,…`: a config key, or `cluster.<key>` (e.g. cluster.nodes, cluster.all_to_all). */
export function parseVary(spec: string): { key: string; values: unknown[] } {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new ConfigError(`--vary must look like key=v1,v2,... (got ${show(spec)})`);
  return { key: spec.slice(0, eq).trim(), values: spec.slice(eq + 1).split(',').map((v) => YAML.parse(v.trim()) as unknown) };
}

function setPath(tree: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  if (rest.length === 0) return { ...tree, [head!]: value };
  return { ...tree, [head!]: setPath((tree[head!] ?? {}) as Record<string, unknown>, rest, value) };
}

/** Projects the workload once per value of the key (a cluster key, or a config key replayed on the same routing). */
export function vary(cluster: Cluster, w: Workload, key: string, values: unknown[]): VaryRow[] {
  return values.map((value) => {
    let c: Cluster;
    let wl = w;
    // this machine takes the config's device threads (clusterFor); a varied cluster key is set after, so cluster.gpus_per_node wins
    if (key.startsWith('cluster.')) {
      const tree = clusterFor(cluster, w.config).cluster as unknown as Record<string, unknown>;
      c = validateCluster(setPath(tree, key.slice(8).split('.'), value), `--vary ${key}`);
    } else {
      const set = `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`;
      const config = resolveConfig({ base: w.config as unknown as Record<string, unknown>, sets: [set] }).config;
      if (w.source === 'run') checkReplay(w.config, config, '--vary');
      wl = w.source === 'config' ? uniformWorkload(config, w.vocabSize) : { ...w, config };
      c = clusterFor(cluster, config).cluster;
    }
    const p = project(c, wl);
    const layers = p.layers;
    return {
      value, step_ms: p.step_ms, tokens_per_s: p.tokens_per_s, mfu: p.mfu, dispatch_overhead_fraction: p.dispatch_overhead_fraction,
      drop_fraction: layers.reduce((a, l) => a + l.drop_fraction, 0) / Math.max(1, layers.length),
      straggler_factor: maxOf(layers.map((l) => l.straggler_factor), 1), memory_gb_per_gpu: p.memory_gb_per_gpu,
    };
  });
}
