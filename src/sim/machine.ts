import type { Config } from '../core/config/defaults.js';
import { validateCluster, type Cluster } from './cluster.js';

/** A cluster as projected for one config, and what to say about it (one line each). */
export interface ClusterFor {
  cluster: Cluster;
  notes: string[];
}

/**
 * This machine (a cluster with `calibration`) projected for a config: as many device threads as the
 * config (a run's own) has, on one node, since its measured step is of that many threads; and a line
 * when the layout, or the device count, is not one the calibration measured. Any other cluster as is.
 */
export function clusterFor(c: Cluster, config: Config): ClusterFor {
  const cal = c.calibration;
  if (!cal) return { cluster: c, notes: [] };
  const D = config.parallel.devices;
  const cluster = validateCluster({ ...c, nodes: 1, gpus_per_node: D }, `cluster ${c.name}`);
  const notes: string[] = [];
  const layout = config.parallel.layout;
  if (layout !== cal.layout) {
    notes.push(`note: ${c.name} was calibrated on ${cal.layout} runs; this one's parallel.layout is ${layout}, which the fit never saw, ` +
      `so its projection is that of ${cal.layout} threads`);
  }
  if (!cal.devices.includes(D)) {
    notes.push(`note: ${c.name} was calibrated at ${cal.devices.join(', ')} device threads; ${D} are interpolated or extrapolated from those`);
  }
  return { cluster, notes };
}
