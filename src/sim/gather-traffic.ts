import type { Cluster } from './cluster.js';
import type { A2aLoad, HierarchicalLoad } from './collectives/all-to-all.js';
import { epGroup, type Layout } from './layout.js';
import type { GpuTraffic, LayerTraffic } from './traffic-types.js';

/**
 * The allgather dispatcher (Megatron-Core's MoEAllGatherTokenDispatcher): every GPU's T tokens go whole to each of
 * its EP group's peers (an all-gather; the combine is the matching reduce-scatter), whatever they chose; each GPU
 * then computes the rows routed to its own experts. T = the GPU's routed tokens (tokensPerGpu).
 */
export function gatherTraffic(c: Cluster, L: Layout, kept: (gpu: number) => number[], rowBytes: number): LayerTraffic {
  const g = c.gpus_per_node;
  const perStage = L.gpus / L.pp;
  const per = L.expertsPerGpu;
  const bytes = L.tokensPerGpu * rowBytes;
  const gpus: GpuTraffic[] = new Array(perStage);
  let intraBytes = 0;
  let interBytes = 0;
  for (let i = 0; i < perStage; i++) {
    const members = epGroup(L, i);
    const s = members.indexOf(i);
    const intraPeers = members.filter((j) => j !== i && Math.floor(j / g) === Math.floor(i / g)).length;
    const interPeers = members.length - 1 - intraPeers;
    const flat: A2aLoad = {
      intraOut: bytes * intraPeers, intraIn: bytes * intraPeers, interOut: bytes * interPeers, interIn: bytes * interPeers, intraPeers, interPeers,
    };
    const hier: HierarchicalLoad = {
      phase1: { out: flat.intraOut, in: flat.intraIn, peers: intraPeers }, phase2: { out: flat.interOut, in: flat.interIn, peers: interPeers },
    };
    const rows = Array.from({ length: per }, (_, e) => members.reduce((a, j) => a + kept(j)[s * per + e]!, 0));
    gpus[i] = { flat, hier, rows };
    intraBytes += flat.intraOut;
    interBytes += flat.interOut;
  }
  return { gpus, intraBytes, interBytes, hierIntraBytes: intraBytes, hierInterBytes: interBytes };
}
