import type { Config } from '../core/config/defaults.js';
import type { Layout } from './layout.js';
import type { LayerLoad } from './workload.js';

/** How many copies of each token a Switch layer's all-to-all carries, relative to one per expert choice. */
export interface Fanout {
  /** none: a row per expert choice (NCCL all-to-all, Megatron-Core and DeepSpeed); device or node: routing is limited to groups of those */
  level: 'none' | 'device' | 'node';
  /** mean groups one token's k experts span */
  groupsPerToken: number;
  /** factors on the bytes between GPUs of one node and between nodes */
  intra: number;
  inter: number;
}

/**
 * Device- and node-limited routing (DeepSeek-V2 §2.1.3, DeepSeek-V3 §2.1.2; Megatron-Core's
 * moe_router_num_groups / moe_router_group_topk) as the all-to-all sees it: a token's k experts lie
 * in at most M = moe.route_group_topk of the G groups, and its dispatch sends it once per group it
 * reaches, the group's GPUs taking it from there (DeepSeek-V3 §3.2.2: one copy over InfiniBand per
 * target node, forwarded over NVLink) instead of once per expert choice. So its bytes scale by
 *   groups per token / k
 * with groups per token the recorded run's mean (its metrics' groups_per_token) when the run counted
 * it over the groups simulated here (a mean over other groups says nothing about these), else M (every
 * kept group gives at least one expert, and at uniform scores ⌊k/M⌋); never more than M or k.
 * G equal to the EP group's nodes makes the groups nodes: only the cross-node bytes shrink (NVLink
 * still carries every copy to its GPU); any other G is taken as groups of devices: every pair's bytes.
 * Not modelled: the forwarding's own NVLink traffic, which DeepSeek-V3 overlaps with the IB sends.
 */
export function fanout(config: Config, L: Layout, load: LayerLoad | undefined): Fanout {
  const m = config.moe;
  if (m.route_group_topk === 0 || m.top_k === 1) return { level: 'none', groupsPerToken: 1, intra: 1, inter: 1 };
  const G = m.route_groups || L.ep; // the trainer's default (one group per device) is one per EP rank here
  const nodes = L.groups.ep.nodes;
  const level = G === nodes && nodes > 1 && G < L.ep ? 'node' : 'device';
  const recorded = load?.expertGroups === G ? load.groupsPerToken : undefined;
  const groupsPerToken = Math.min(m.top_k, m.route_group_topk, recorded ?? m.route_group_topk);
  const f = groupsPerToken / m.top_k;
  return { level, groupsPerToken, intra: level === 'node' ? 1 : f, inter: f };
}
