import type { Cluster } from './cluster.js';
import type { A2aLoad, HierarchicalLoad } from './collectives/all-to-all.js';
import { epGroup, type Layout } from './layout.js';

/** One GPU's part of a Switch layer's expert-parallel exchange: what it sends and receives, and the rows its experts compute. */
export interface GpuTraffic {
  flat: A2aLoad;
  hier: HierarchicalLoad;
  /** rows per local expert (all sources of its EP group together) */
  rows: number[];
}

/** All GPUs of one pipeline stage (indexed by their rank within the stage) and the bytes they move in one all-to-all. */
export interface LayerTraffic {
  gpus: GpuTraffic[];
  /** all GPUs of the stage together: bytes over NVLink-class links and over NICs, one all-to-all (flat) */
  intraBytes: number;
  interBytes: number;
  /** the same for the hierarchical pattern (its two phases) */
  hierIntraBytes: number;
  hierInterBytes: number;
}

/**
 * Who sends how many bytes to whom in one all-to-all of a Switch layer, in expert-parallel groups:
 * GPU i of a stage belongs to the EP group of the ep GPUs i' ≡ i (mod etp) in its block of etp·ep
 * ranks, each holding E/ep experts; a GPU's tokens go to its own group only (ep − 1 peers), never
 * to other replicas of the experts (data parallelism across groups). `kept(i)` is GPU i's rows to
 * each of the E experts for this micro-batch (after capacity, or every slot with padding).
 * Hierarchical (DeepSpeed-MoE's) applies when an EP group spans whole nodes; otherwise it is flat.
 * `copies` scales the bytes between GPUs of a node and between nodes (limited routing's fan-out, fanout.ts).
 */
export function layerTraffic(c: Cluster, L: Layout, kept: (gpu: number) => number[], rowBytes: number, copies: { intra: number; inter: number } = { intra: 1, inter: 1 }): LayerTraffic {
  const g = c.gpus_per_node;
  const perStage = L.gpus / L.pp;
  const { ep, etp, expertsPerGpu: per } = L;
  const block = etp * ep;
  const gpus: GpuTraffic[] = new Array(perStage);
  let intraBytes = 0;
  let interBytes = 0;
  let hierIntraBytes = 0;
  let hierInterBytes = 0;
  for (let start = 0; start < perStage; start += block) {
    for (let lane = 0; lane < etp; lane++) {
      const members = epGroup(L, start + lane);
      const node = (i: number) => Math.floor(i / g); // stages are whole blocks of ranks: node order within a stage is node order
      const rows = members.map((i) => kept(i));
      // bytes[s][t]: member s to member t
      // (scaled by the copies a token makes of itself per pair: fewer than its choices under device- or node-limited routing, fanout.ts)
      const bytes = rows.map((r, s) => members.map((j, t) => rowBytes * (node(members[s]!) === node(j) ? copies.intra : copies.inter) * r.slice(t * per, (t + 1) * per).reduce((a, b) => a + b, 0)));
      const nodesOf = [...new Set(members.map(node))];
      const perNode = members.filter((i) => node(i) === node(members[0]!)).length;
      const wholeNodes = nodesOf.length > 1 && perNode === g;
      const local = (i: number) => i % g;
      // toLocal[s][q]: member s to every member of local rank q (any node); what phase 1 hands the node peer of rank q
      const toLocal = wholeNodes ? bytes.map((row) => row.reduce((acc, b, t) => ((acc[local(members[t]!)]! += b), acc), new Array<number>(g).fill(0))) : [];
      members.forEach((i, s) => {
        let intraOut = 0;
        let intraIn = 0;
        let interOut = 0;
        let interIn = 0;
        let intraPeers = 0;
        let interPeers = 0;
        members.forEach((j, t) => {
          if (t === s) return;
          if (node(i) === node(j)) {
            intraOut += bytes[s]![t]!;
            intraIn += bytes[t]![s]!;
            intraPeers++;
          } else {
            interOut += bytes[s]![t]!;
            interIn += bytes[t]![s]!;
            interPeers++;
          }
        });
        intraBytes += intraOut;
        interBytes += interOut;
        let hier: HierarchicalLoad;
        if (wholeNodes) {
          const p = local(i);
          const onMyNode = members.map((j, t) => [j, t] as const).filter(([j]) => node(j) === node(i)).map(([, t]) => t);
          const total = bytes[s]!.reduce((a, b) => a + b, 0);
          // phase 1: everything not for my own local rank goes to the node peer of its local rank; I get my peers' rows for local rank p
          const p1Out = total - toLocal[s]![p]!;
          const p1In = onMyNode.reduce((a, u) => a + (u === s ? 0 : toLocal[u]![p]!), 0);
          // phase 2, along my rail: my node's rows for local rank p on other nodes out; other nodes' rows for me in
          const p2Out = onMyNode.reduce((a, u) => a + toLocal[u]![p]! - bytes[u]![s]!, 0);
          const p2In = members.reduce((a, j, u) => a + (node(j) === node(i) ? 0 : bytes[u]![s]!), 0);
          hier = { phase1: { out: p1Out, in: p1In, peers: perNode - 1 }, phase2: { out: p2Out, in: p2In, peers: nodesOf.length - 1 } };
          hierIntraBytes += p1Out;
          hierInterBytes += p2Out;
        } else {
          hier = { phase1: { out: intraOut, in: intraIn, peers: intraPeers }, phase2: { out: interOut, in: interIn, peers: interPeers } };
          hierIntraBytes += intraOut;
          hierInterBytes += interOut;
        }
        const mine = Array.from({ length: per }, (_, e) => rows.reduce((a, r) => a + r[s * per + e]!, 0));
        gpus[i] = { flat: { intraOut, intraIn, interOut, interIn, intraPeers, interPeers }, hier, rows: mine };
      });
    }
  }
  return { gpus, intraBytes, interBytes, hierIntraBytes, hierInterBytes };
}
