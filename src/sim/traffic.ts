import { ConfigError } from '../config/errors.js';
import type { Cluster } from './cluster.js';
import type { A2aLoad } from './collective.js';

/**
 * Who sends how many bytes to whom in one all-to-all of a Switch layer, projected onto the cluster's
 * N GPUs: GPU i holds the tokens of one routing group (the run's group i mod D: its recorded skew and
 * drops) and E/N experts (or, with N > E, a 1/(N/E) share of one expert's rows). Closed sums, no N×N
 * matrix: a 512-GPU layer is O(N·g).
 */
export interface LayerTraffic {
  /** per GPU: bytes out and in per link level (flat all-to-all) */
  flat: A2aLoad[];
  /** per GPU: bytes of the hierarchical all-to-all's two phases */
  hier: { phase1: { out: number; in: number }; phase2: { out: number; in: number } }[];
  /** per GPU: token rows its experts compute on */
  rows: number[];
  /** all GPUs together: bytes over NVLink-class links and over NICs (flat) */
  intraBytes: number;
  interBytes: number;
}

export function checkPlacement(gpus: number, experts: number): void {
  if (experts % gpus !== 0 && gpus % experts !== 0) throw new ConfigError(`moe.n_experts must divide the cluster's GPU count or be a multiple of it (${gpus} GPUs) (got ${experts})`);
}

/** kept[r][e]: rows group r sends to expert e (padded dispatch: C for every pair) */
export function layerTraffic(c: Cluster, kept: number[][], rowBytes: number): LayerTraffic {
  const g = c.gpus_per_node;
  const N = c.nodes * g;
  const D = kept.length;
  const E = kept[0]!.length;
  checkPlacement(N, E);
  // bytes from a GPU of group r to GPU j: its experts' block, or its share of one expert
  const pre = kept.map((row) => row.reduce<number[]>((acc, n) => [...acc, acc.at(-1)! + n], [0]));
  const to = (r: number, j: number) => rowBytes * (N <= E ? pre[r]![((j + 1) * E) / N]! - pre[r]![(j * E) / N]! : kept[r]![Math.floor((j * E) / N)]! * (E / N));
  const group = (i: number) => i % D;
  const count = Array.from({ length: D }, (_, r) => (r < N ? Math.floor((N - 1 - r) / D) + 1 : 0));
  const inAll = Array.from({ length: N }, (_, j) => kept.reduce((a, _row, r) => a + count[r]! * to(r, j), 0));
  const outAll = Array.from({ length: N }, (_, i) => rowBytes * pre[group(i)]!.at(-1)!);
  // per group and local rank p: bytes to every GPU of rank p (the rail)
  const rail = kept.map((_, r) => Array.from({ length: g }, (_, p) => Array.from({ length: c.nodes }, (_, b) => to(r, b * g + p)).reduce((a, x) => a + x, 0)));
  const flat: A2aLoad[] = [];
  const hier: LayerTraffic['hier'] = [];
  let intraBytes = 0;
  let interBytes = 0;
  for (let i = 0; i < N; i++) {
    const a = Math.floor(i / g);
    const p = i % g;
    const r = group(i);
    const self = to(r, i);
    let intraOut = 0;
    let intraIn = 0;
    let p1In = 0;
    let p2Out = 0;
    let fromNode = 0;
    for (let q = 0; q < g; q++) {
      const s = a * g + q;
      if (s !== i) {
        intraOut += to(r, s);
        intraIn += to(group(s), i);
        p1In += rail[group(s)]![p]!;
      }
      p2Out += rail[group(s)]![p]! - to(group(s), a * g + p);
      fromNode += to(group(s), i);
    }
    const out = outAll[i]! - self;
    const inn = inAll[i]! - self;
    flat.push({ intraOut, intraIn, interOut: out - intraOut, interIn: inn - intraIn });
    hier.push({ phase1: { out: outAll[i]! - rail[r]![p]!, in: p1In }, phase2: { out: p2Out, in: inAll[i]! - fromNode } });
    intraBytes += intraOut;
    interBytes += out - intraOut;
  }
  return { flat, hier, rows: inAll.map((b) => b / rowBytes), intraBytes, interBytes };
}
