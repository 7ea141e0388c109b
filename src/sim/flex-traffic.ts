import type { Cluster } from './cluster.js';
import type { A2aLoad } from './collectives/all-to-all.js';
import { epGroup, type Layout } from './layout.js';
import type { GpuTraffic as Gpu, LayerTraffic as Layer } from './traffic-types.js';

/**
 * The flex dispatcher's traffic (Megatron-Core's MoEFlexTokenDispatcher on DeepEP; DeepSeek-V3 report §3.2.2;
 * deepseek-ai/DeepEP's internode kernels): a token of GPU s goes once over the network to each other node holding
 * one of its experts, to the GPU of s's own position on that node (its rail peer), which forwards it over NVLink
 * to each GPU of that node holding one of its experts; to GPUs of its own node it goes once each over NVLink.
 * In bytes, with choices[s][t] the (token, expert) rows s routes to t's experts, a row of b bytes, and the copy
 * factors of fanout.ts (inter: node copies per choice, intra: GPU copies per choice):
 *   network   s → rail peer on node n:   inter · Σ_{t on n} choices[s][t] · b
 *   NVLink    s → t on its node:         intra · choices[s][t] · b
 *   forward   rail peer r → t on node n: intra · choices[s][t] · b   for each s elsewhere whose rail peer is r, t ≠ r
 * Each GPU talks to its node's GPUs (NVLink) and to one GPU per other node (the network): far fewer peers than the
 * pairwise all-to-all's. The rows its experts compute are unchanged (one per choice).
 */
export function flexTraffic(c: Cluster, L: Layout, kept: (gpu: number) => number[], rowBytes: number,
  copies: { intra: number; inter: number }): Layer {
  const g = c.gpus_per_node;
  const perStage = L.gpus / L.pp;
  const { ep, etp, expertsPerGpu: per } = L;
  const gpus: Gpu[] = new Array(perStage);
  let intraBytes = 0;
  let interBytes = 0;
  for (let start = 0; start < perStage; start += etp * ep) {
    for (let lane = 0; lane < etp; lane++) {
      const members = epGroup(L, start + lane);
      const rows = members.map((i) => kept(i));
      const node = (i: number) => Math.floor(i / g);
      const onNode = new Map<number, number[]>(); // node → its members' indices, in order
      members.forEach((i, s) => onNode.set(node(i), [...(onNode.get(node(i)) ?? []), s]));
      const position = (s: number) => onNode.get(node(members[s]!))!.indexOf(s);
      const railPeer = (s: number, n: number) => onNode.get(n)![position(s)];
      const choices = rows.map((r) => members.map((_, t) => r.slice(t * per, (t + 1) * per).reduce((a, b) => a + b, 0)));
      const loads: A2aLoad[] = members.map(() => ({ intraOut: 0, intraIn: 0, interOut: 0, interIn: 0, intraPeers: 0, interPeers: 0 }));
      members.forEach((i, s) => {
        const mine = onNode.get(node(i))!;
        loads[s]!.intraPeers = mine.length - 1;
        loads[s]!.interPeers = onNode.size - 1;
        for (const t of mine) {
          if (t === s) continue;
          const b = copies.intra * choices[s]![t]! * rowBytes;
          loads[s]!.intraOut += b;
          loads[t]!.intraIn += b;
        }
        for (const [n, theirs] of onNode) {
          if (n === node(i)) continue;
          const r = railPeer(s, n);
          if (r === undefined) continue; // nodes holding fewer of the group's GPUs: no rail peer at this position
          const b = copies.inter * theirs.reduce((a, t) => a + choices[s]![t]!, 0) * rowBytes;
          loads[s]!.interOut += b;
          loads[r]!.interIn += b;
          for (const t of theirs) {
            if (t === r) continue;
            const f = copies.intra * choices[s]![t]! * rowBytes;
            loads[r]!.intraOut += f;
            loads[t]!.intraIn += f;
          }
        }
      });
      members.forEach((i, s) => {
        const flat = loads[s]!;
        const hier = {
          phase1: { out: flat.intraOut, in: flat.intraIn, peers: flat.intraPeers },
          phase2: { out: flat.interOut, in: flat.interIn, peers: flat.interPeers },
        };
        gpus[i] = { flat, hier, rows: Array.from({ length: per }, (_, e) => rows.reduce((a, r) => a + r[s * per + e]!, 0)) };
        intraBytes += flat.intraOut;
        interBytes += flat.interOut;
      });
    }
  }
  return { gpus, intraBytes, interBytes, hierIntraBytes: intraBytes, hierInterBytes: interBytes };
}
