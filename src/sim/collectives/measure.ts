import { ConfigError } from '../../core/config/errors.js';
import { gpuCount, type Cluster } from '../cluster.js';
import { allReduceBusFactor, allReduceUs } from './all-reduce.js';
import { uniformA2aUs } from './all-to-all.js';
import { allGatherUs, gatherBusFactor, reduceScatterUs } from './gather-scatter.js';
import { consecutive } from './group.js';

export const COLLECTIVES = ['all_to_all', 'all_reduce', 'all_gather', 'reduce_scatter'] as const;
export type CollectiveName = (typeof COLLECTIVES)[number];

/**
 * One collective as nccl-tests reports it: `bytes` is its `size` column (bytes per rank), algbw = size /
 * time, busbw = algbw × the collective's factor.
 */
export interface CollectiveReport {
  collective: CollectiveName;
  gpus: number;
  nodes: number;
  bytes: number;
  time_us: number;
  algbw_gbps: number;
  busbw_gbps: number;
}

/**
 * `switch-sim simulate --collective NAME --bytes B [--gpus N]`: the model of one collective on the cluster's
 * first N GPUs.
 */
export function collectiveReport(
  c: Cluster, collective: CollectiveName, bytes: number, gpus = gpuCount(c),
): CollectiveReport {
  if (gpus < 2 || gpus > gpuCount(c)) throw new ConfigError(`--gpus must be from 2 to the cluster's ${gpuCount(c)} ` +
    `GPUs (got ${gpus})`);
  const g = consecutive(c, gpus);
  const time = {
    all_to_all: uniformA2aUs, all_reduce: allReduceUs, all_gather: allGatherUs, reduce_scatter: reduceScatterUs,
  }[collective](c, g, bytes);
  const algbw = bytes / (time / 1e6) / 1e9;
  const factor = collective === 'all_reduce' ? allReduceBusFactor(gpus) : gatherBusFactor(gpus);
  return { collective, gpus, nodes: g.nodes, bytes, time_us: time, algbw_gbps: algbw, busbw_gbps: algbw * factor };
}
