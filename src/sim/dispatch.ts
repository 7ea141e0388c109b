import type { Config } from '../core/config/defaults.js';
import { exchangeOverheadUs, type Cluster } from './cluster.js';
import { flatA2aUs, hierarchicalA2aUs, type A2aLoad } from './collectives/all-to-all.js';
import { allGatherUs } from './collectives/gather-scatter.js';
import type { Layout } from './layout.js';
import { exchangesPerLayer, moeRecomputed } from './recompute.js';
import type { GpuTraffic } from './traffic-types.js';

/**
 * Bytes a value takes in the forward dispatch (plan.dispatch_fwd_dtype): bf16 2; mxfp8 one byte and a shared
 * one-byte scale per 32 values (OCP Microscaling Formats spec v1.0: blocks of 32, E8M0 scales), 1 + 1/32. DeepSeek-V3's
 * own FP8 dispatch comes to the same: an fp32 scale per 1×128 tile (report §3.3.2), 4/128 a value.
 */
export const dispatchValueBytes = (config: Config, valueBytes: number) =>
  (config.plan.dispatch_fwd_dtype === 'mxfp8' ? 1 + 1 / 32 : valueBytes);

const scaled = (l: A2aLoad, f: number): A2aLoad =>
  ({ ...l, intraOut: l.intraOut * f, intraIn: l.intraIn * f, interOut: l.interOut * f, interIn: l.interIn * f });

/** A Switch layer's exchanges on one GPU, one micro-batch: one of them at bf16 (µs), all of them, and how many. */
export interface MoeExchange {
  one_us: number;
  total_us: number;
  exchanges: number;
}

/**
 * The time of a Switch layer's dispatches and combines on GPU g (its traffic from traffic.ts), by plan.dispatcher:
 *   alltoall  the cluster's all-to-all (flat, or hierarchical: collectives/all-to-all.ts) on its rows
 *   flex      DeepEP's one fused kernel: its NVLink and network parts at once (flatA2aUs on flex-traffic.ts's
 *             load, whatever cluster.all_to_all says); the forward dispatch at dispatchValueBytes a value
 *   allgather an all-gather of the EP group's tokens (the combine: the matching reduce-scatter, the same time)
 * Dispatch and combine, forward and backward, and forward again when the Switch layer is recomputed
 * (recompute.ts: 4 or 6). All but the forward dispatches move bf16 gradients or outputs.
 */
export function moeExchange(c: Cluster, config: Config, L: Layout, g: GpuTraffic, valueBytes: number): MoeExchange {
  const exchanges = exchangesPerLayer(config);
  const dispatcher = config.plan.dispatcher;
  if (dispatcher === 'allgather') {
    const one = allGatherUs(c, L.groups.ep, L.ep * L.tokensPerGpu * config.model.d_model * valueBytes) + exchangeOverheadUs(c);
    return { one_us: one, total_us: exchanges * one, exchanges };
  }
  const time = (l: A2aLoad) => flatA2aUs(c, l) + exchangeOverheadUs(c);
  if (dispatcher === 'alltoall') {
    const one = c.all_to_all === 'flat' ? time(g.flat) : hierarchicalA2aUs(c, g.hier) + exchangeOverheadUs(c);
    return { one_us: one, total_us: exchanges * one, exchanges };
  }
  const one = time(g.flat);
  const dispatches = moeRecomputed(config) ? 2 : 1;
  const fp8 = time(scaled(g.flat, dispatchValueBytes(config, valueBytes) / valueBytes));
  return { one_us: one, total_us: dispatches * fp8 + (exchanges - dispatches) * one, exchanges };
}
