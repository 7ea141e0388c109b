import type { Config } from '../core/config/defaults.js';
import type { Layout } from './layout.js';
import type { LayerLoad } from './workload.js';

/** How many copies of each token a Switch layer's dispatch carries, relative to one per expert choice. */
export interface Fanout {
  /** Megatron-Core's moe_token_dispatcher_type (plan.dispatcher) */
  dispatcher: 'alltoall' | 'allgather' | 'flex';
  /** none: routing is not limited; device or node: limited to groups of those (moe.route_groups, route_group_topk) */
  level: 'none' | 'device' | 'node';
  /** mean groups one token's k experts span (the limit, or the recorded run's mean) */
  groupsPerToken: number;
  /** factors on a (token, expert) row's bytes: to a GPU of the node (NVLink) and to another node (the network) */
  intra: number;
  inter: number;
}

/**
 * The chance that none of c uniform choices among n experts falls on a given e of them (hypergeometric, without
 * replacement): Π_{i<c} (n − e − i)/(n − i); a fractional c interpolates linearly between ⌊c⌋ and ⌈c⌉.
 */
export function missChance(n: number, e: number, c: number): number {
  const at = (k: number) => {
    let p = 1;
    for (let i = 0; i < k; i++) p *= Math.max(0, n - e - i) / (n - i);
    return p;
  };
  const lo = Math.floor(c);
  return lo === c ? at(c) : at(lo) + (c - lo) * (at(lo + 1) - at(lo));
}

/**
 * Expected distinct nodes and GPUs of the EP group one token's k choices reach, and the limit's groups per token.
 * Device- and node-limited routing (DeepSeek-V2 §2.1.3, DeepSeek-V3 §2.1.2; Megatron-Core's moe_router_num_groups /
 * moe_router_group_topk): a token's experts lie in at most M = moe.route_group_topk of the G groups; a kept group
 * gives at least one (DeepSeek-V3 ranks groups by the sum of their top-2 scores), so M groups a token, or the
 * recorded run's mean when it counted over the groups simulated here. Inside what a token may reach, its choices
 * are uniform, so the distinct units follow missChance:
 *   node groups (G = the EP group's nodes):  nodes = M;  GPUs = M · g · (1 − miss(E/nodes, E/ep, k/M))
 *   device groups (G = ep):                  GPUs = M;   nodes = nodes_ep · (1 − miss(ep, g, M))
 *   no limit (or other G):                   GPUs = ep · (1 − miss(E, E/ep, k));  nodes = nodes_ep · (1 − miss(E, E/nodes, k))
 * with g the EP group's GPUs a node.
 */
export function tokenReach(config: Config, L: Layout, load: LayerLoad | undefined) {
  const m = config.moe;
  const k = m.top_k;
  const E = L.experts;
  const nodes = L.groups.ep.nodes;
  const g = L.groups.ep.perNode;
  const perGpu = E / L.ep;
  const G = m.route_groups || L.ep; // the trainer's default (one group per device) is one per EP rank here
  const limited = m.route_group_topk > 0 && k > 1;
  const level: Fanout['level'] = !limited ? 'none' : G === nodes && nodes > 1 && G < L.ep ? 'node' : G === L.ep ? 'device' : 'none';
  const recorded = load?.expertGroups === G ? load.groupsPerToken : undefined;
  const groupsPerToken = limited ? Math.min(k, m.route_group_topk, recorded ?? m.route_group_topk) : 1;
  if (level === 'node') {
    return { level, groupsPerToken, nodes: groupsPerToken, gpus: groupsPerToken * g * (1 - missChance(E / nodes, perGpu, k / groupsPerToken)) };
  }
  if (level === 'device') return { level, groupsPerToken, gpus: groupsPerToken, nodes: nodes * (1 - missChance(L.ep, g, groupsPerToken)) };
  return { level, groupsPerToken, gpus: L.ep * (1 - missChance(E, perGpu, k)), nodes: nodes * (1 - missChance(E, E / nodes, k)) };
}

/**
 * What each dispatcher sends (Megatron-Core's token_dispatcher.py; research notes §6.1):
 *   alltoall  a row per (token, expert) pair: a token with k experts on one remote GPU goes k times (factors 1);
 *   allgather every token to every GPU of the EP group, whatever it chose (traffic.ts; factors unused);
 *   flex      DeepEP (deepseek-ai/DeepEP; DeepSeek-V3 §3.2.2): one copy per destination node over the network
 *             (to the GPU of the same local rank there), then one per destination GPU over NVLink, so
 *             inter = nodes reached / k and intra = GPUs reached / k (tokenReach); node-limited routing
 *             bounds the nodes by M, which is what makes it cheaper.
 */
export function fanout(config: Config, L: Layout, load: LayerLoad | undefined): Fanout {
  const dispatcher = config.plan.dispatcher;
  const reach = tokenReach(config, L, load);
  const k = config.moe.top_k;
  if (dispatcher !== 'flex') return { dispatcher, level: reach.level, groupsPerToken: reach.groupsPerToken, intra: 1, inter: 1 };
  return { dispatcher, level: reach.level, groupsPerToken: reach.groupsPerToken, intra: reach.gpus / k, inter: reach.nodes / k };
}
