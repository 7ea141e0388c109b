import type { Cluster } from './cluster.js';
import type { HierarchicalLoad } from './collectives/all-to-all.js';
import type { Fanout } from './fanout.js';
import { flexTraffic } from './flex-traffic.js';
import { gatherTraffic } from './gather-traffic.js';
import { epGroup, type Layout } from './layout.js';
import type { GpuTraffic, LayerTraffic } from './traffic-types.js';

/** r[from] + … + r[to − 1], added in order from 0 (as slice(from, to).reduce would, without the copy) */
function sumOf(r: number[], from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += r[i]!;
  return sum;
}

/**
 * Who sends how many bytes to whom in one all-to-all of a Switch layer, in expert-parallel groups:
 * GPU i of a stage belongs to the EP group of the ep GPUs i' ≡ i (mod etp) in its block of etp·ep
 * ranks, each holding E/ep experts; a GPU's tokens go to its own group only (ep − 1 peers), never
 * to other replicas of the experts (data parallelism across groups). `kept(i)` is GPU i's rows to
 * each of the E experts for this micro-batch (after capacity, or every slot with padding).
 * Hierarchical (DeepSpeed-MoE's) applies when an EP group spans whole nodes; otherwise it is flat.
 * `copies` scales the bytes between GPUs of a node and between nodes (fanout.ts); its dispatcher picks the pattern:
 * this pairwise one for alltoall, DeepEP's for flex (flex-traffic.ts), every token to every peer for allgather.
 */
export function layerTraffic(c: Cluster, L: Layout, kept: (gpu: number) => number[], rowBytes: number,
  copies: Pick<Fanout, 'intra' | 'inter'> & Partial<Pick<Fanout, 'dispatcher'>> = { intra: 1, inter: 1 }): LayerTraffic {
  // a function of its arguments alone, and a plan search projects many plans with the same exchange (sharding,
  // recompute, the pipeline split, …): the key holds every argument (the cluster by identity, copies whole, each
  // GPU's rows by content, and every layout field an exchange has ever read)
  const key = () => trafficKey([clusterId(c), rowBytes, JSON.stringify(copies), layoutKey(L)], L.gpus / L.pp, kept);
  const known = computedTraffic.get(key());
  if (known) return known;
  const traffic = sharedAlike(dispatchTraffic(c, L, kept, rowBytes, copies));
  if (computedTraffic.size >= 1024) computedTraffic.delete(computedTraffic.keys().next().value!);
  computedTraffic.set(key(), traffic); // with the fields this computation read
  return traffic;
}

/** The layout fields the exchanges have read (learnt as they read them: a new one lengthens every later key). */
const layoutFields = new Set<string>();
const layoutKey = (L: Layout) => [...layoutFields].map((f) => `${f}=${JSON.stringify(L[f as keyof Layout])}`).join(';');
const watched = (L: Layout): Layout => new Proxy(L, {
  get(target, field, receiver) {
    if (typeof field === 'string') layoutFields.add(field);
    return Reflect.get(target, field, receiver) as unknown;
  },
});

/**
 * The traffic of the plan's dispatcher, the layout watched for the fields it reads. Where every block of etp · ep
 * GPUs is alike (each GPU's rows the same list as its place in the first block's, blocks placed alike on the nodes)
 * the flex and allgather patterns are computed for the first block alone and stand for every block, their sums added
 * GPU by GPU in the order the whole computation adds them (so to the same bits).
 */
function dispatchTraffic(c: Cluster, L: Layout, kept: (gpu: number) => number[], rowBytes: number,
  copies: Pick<Fanout, 'intra' | 'inter'> & Partial<Pick<Fanout, 'dispatcher'>>): LayerTraffic {
  const W = watched(L);
  const flex = copies.dispatcher === 'flex';
  if (!flex && copies.dispatcher !== 'allgather') return exchangeTraffic(c.gpus_per_node, W.gpus / W.pp, W, kept, rowBytes, copies);
  const run = (layout: Layout) => (flex ? flexTraffic(c, layout, kept, rowBytes, copies) : gatherTraffic(c, layout, kept, rowBytes));
  const block = W.etp * W.ep;
  const perStage = W.gpus / W.pp;
  const g = c.gpus_per_node;
  const alike = perStage > block && (block % g === 0 || g % block === 0)
    && Array.from({ length: perStage - block }, (_, i) => i + block).every((i) => kept(i) === kept(i % block));
  if (!alike) return run(W);
  const first = run(watched({ ...L, gpus: block * L.pp }));
  const gpus = Array.from({ length: perStage }, (_, i) => first.gpus[i % block]!);
  // flexTraffic adds EP group by EP group (blocks, then lanes, members in order), gatherTraffic GPU by GPU
  const order = flex ? Array.from({ length: perStage / block }, (_, b) => Array.from({ length: W.etp },
    (__, lane) => epGroup(W, b * block + lane))).flat(2) : gpus.map((_, i) => i);
  let intraBytes = 0;
  let interBytes = 0;
  for (const i of order) {
    intraBytes += gpus[i]!.flat.intraOut;
    interBytes += gpus[i]!.flat.interOut;
  }
  return { gpus, intraBytes, interBytes, hierIntraBytes: intraBytes, hierInterBytes: interBytes };
}

/** GPUs with the same figures share one object (stage.ts then costs each alike GPU once). */
function sharedAlike(t: LayerTraffic): LayerTraffic {
  const seen = new Map<string, GpuTraffic>();
  const shared = new Map<GpuTraffic, GpuTraffic>(); // objects already shared are looked at once
  return {
    ...t,
    gpus: t.gpus.map((g) => {
      let same = shared.get(g);
      if (same) return same;
      const key = JSON.stringify(g);
      same = seen.get(key) ?? g;
      seen.set(key, same);
      shared.set(g, same);
      return same;
    }),
  };
}

/** The last layerTraffic results, by what they were computed from (the oldest dropped past 1,024). */
const computedTraffic = new Map<string, LayerTraffic>();
const clusters = new WeakMap<Cluster, number>();
let clustersSeen = 0;
const clusterId = (c: Cluster) => clusters.get(c) ?? (clusters.set(c, ++clustersSeen), clustersSeen);

/** Every input of layerTraffic as one string: the numbers, then each GPU's rows (by content). */
function trafficKey(numbers: (number | string)[], gpus: number, kept: (gpu: number) => number[]): string {
  const ids = new Map<number[], number>();
  const contents: string[] = [];
  const order = Array.from({ length: gpus }, (_, i) => {
    const r = kept(i);
    let id = ids.get(r);
    if (id === undefined) {
      ids.set(r, (id = ids.size));
      contents.push(r.join(','));
    }
    return id;
  });
  return `${numbers.join(',')}|${contents.join(';')}|${order.join(',')}`;
}

function exchangeTraffic(g: number, perStage: number, L: Layout, kept: (gpu: number) => number[], rowBytes: number,
  copies: { intra: number; inter: number }): LayerTraffic {
  const { ep, etp, expertsPerGpu: per } = L;
  const block = etp * ep;
  const gpus: GpuTraffic[] = new Array(perStage);
  let intraBytes = 0;
  let interBytes = 0;
  let hierIntraBytes = 0;
  let hierInterBytes = 0;
  // EP groups alike (the same row lists member by member, at the same local ranks and nodes relative to the first
  // member) move the same bytes: each is computed once and replayed member by member, its sums added in the same order
  const alike = new Map<string, { traffic: GpuTraffic[]; adds: number[][] }>();
  const lists = new Map<number[], number>();
  const listId = (r: number[]) => lists.get(r) ?? lists.set(r, lists.size).size - 1;
  for (let start = 0; start < perStage; start += block) {
    for (let lane = 0; lane < etp; lane++) {
      const members = epGroup(L, start + lane);
      const node = (i: number) => Math.floor(i / g); // stages are whole blocks of ranks: node order within a stage is node order
      const rows = members.map((i) => kept(i));
      const key = members.map((i, t) => `${listId(rows[t]!)}.${node(i) - node(members[0]!)}.${i % g}`).join(' ');
      const seen = alike.get(key);
      if (seen) {
        members.forEach((i, s) => {
          const [a, b, p1, p2] = seen.adds[s]!;
          intraBytes += a!;
          interBytes += b!;
          hierIntraBytes += p1!;
          hierInterBytes += p2!;
          gpus[i] = seen.traffic[s]!;
        });
        continue;
      }
      const record = { traffic: [] as GpuTraffic[], adds: [] as number[][] };
      alike.set(key, record);
      // bytes[s][t]: member s to member t
      // (scaled by fanout.ts's copies a row: 1 for the alltoall dispatcher, which sends every (token, expert) pair)
      const scale = (s: number, j: number) => rowBytes * (node(members[s]!) === node(j) ? copies.intra : copies.inter);
      const bytes = rows.map((r, s) => members.map((j, t) => scale(s, j) * sumOf(r, t * per, (t + 1) * per)));
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
        record.traffic[s] = gpus[i]!;
        record.adds[s] = [intraOut, interOut, hier.phase1.out, hier.phase2.out];
      });
    }
  }
  return { gpus, intraBytes, interBytes, hierIntraBytes, hierInterBytes };
}
