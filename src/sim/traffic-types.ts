import type { A2aLoad, HierarchicalLoad } from './collectives/all-to-all.js';

// What a Switch layer's expert-parallel exchange moves, as traffic.ts, flex-traffic.ts and gather-traffic.ts compute it.

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
