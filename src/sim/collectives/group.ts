import type { Cluster } from '../cluster.js';

/**
 * A communicator as the cluster holds it: `ranks` GPUs, `perNode` of them on each of `nodes` nodes.
 * Megatron-Core lays ranks out tp fastest, then (folded) ep, dp, pp: a group of n ranks at stride s
 * fills a node with ⌊g/s⌋ of its members when s ≤ g (g GPUs per node), else has one per node.
 */
export interface CommGroup {
  ranks: number;
  perNode: number;
  nodes: number;
}

export function commGroup(c: Cluster, ranks: number, stride = 1): CommGroup {
  const g = c.gpus_per_node;
  const perNode = stride <= g ? Math.max(1, Math.min(ranks, Math.floor(g / stride))) : 1;
  return { ranks, perNode, nodes: Math.ceil(ranks / perNode) };
}

/** The whole cluster's first `ranks` GPUs, filling nodes in order (what `--collective --gpus N` measures). */
export const consecutive = (c: Cluster, ranks: number) => commGroup(c, ranks, 1);
