import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import YAML from 'yaml';
import type { Config } from '../../core/config/defaults.js';
import { ConfigError, nearest, show } from '../../core/config/errors.js';
import { allKeys, parseAssignment, readConfigFile, resolveConfig } from '../../core/config/load.js';
import { assertTrainable } from '../../core/model/trainable.js';

/**
 * A sweep file (YAML):
 *   base:   a config file (relative to the sweep file) or an inline config
 *   grid:   dotted config keys → lists of values; every combination is a point
 *   runs:   a list of override maps; each is a point (crossed with the grid when both are given); a
 *           `label` key (not a config key) names the point on charts, tables and its directory
 *   seeds:  each point runs once per seed (default: the base config's seed)
 *   set:    dotted keys applied to every point, e.g. { train.steps: 300 }
 *   record: train | profile | [train, profile] (profile adds a few profiled steps per point)
 *   baseline: the swept keys' values of the point every other is compared with, e.g. { moe.n_experts: 1 }
 *   simulate: a cluster file (relative to the sweep file): each run is also projected onto it from its own routing
 */
export interface SweepPoint {
  /** directory name under runs/, unique */
  name: string;
  /** the swept keys' values, dotted names as in the config */
  vary: Record<string, unknown>;
  seed: number;
  config: Config;
}

export interface Sweep {
  name: string;
  file: string;
  /** the keys that vary across points (grid keys, then keys of runs), in order */
  keys: string[];
  record: { train: boolean; profile: boolean };
  /** the swept keys' values of the baseline point (every point's difference is taken from it), if any */
  baseline?: Record<string, unknown>;
  /** a cluster file each run is projected onto (absolute path), if any */
  simulate?: string;
  points: SweepPoint[];
  /** what sweep.yaml keeps: everything needed to trace a result to its config */
  resolved: Record<string, unknown>;
}

const SWEEP_KEYS = ['base', 'grid', 'runs', 'seeds', 'set', 'record', 'baseline', 'simulate'];
type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

const sweepError = (file: string, message: string) => new ConfigError(`sweep ${file}: ${message}`);

function checkKey(file: string, where: string, key: string): void {
  if (allKeys().includes(key)) return;
  const hint = nearest(key, allKeys());
  throw sweepError(file, `${where}: unknown key ${key}${hint ? ` (did you mean ${hint}?)` : ''}`);
}

/** `a.b=1` style override list for resolveConfig. */
const asSets = (over: Tree) => Object.entries(over).map(([
  k, v,
]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);

/** Every combination of the grid's values, in file order (the last key varies fastest). */
function product(grid: [string, unknown[]][]): Tree[] {
  return grid.reduce<Tree[]>((acc, [k, values]) => acc.flatMap((p) => values.map((v) => ({ ...p, [k]: v }))), [{}]);
}

/** A directory-safe point name: its index and values, e.g. `03-n_experts=4-seed=1`. */
function pointName(index: number, vary: Tree, seed: number, width: number): string {
  const parts = typeof vary.label === 'string' ? [vary.label] : Object.entries(vary).map(([
    k, v,
  ]) => `${k.split('.').at(-1)}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return [String(index).padStart(width, '0'), ...parts, `seed=${seed}`].join('-').replace(/[^A-Za-z0-9=._-]/g, '_');
}

/**
 * Reads and validates a sweep file; every point's config is resolved and checked before anything runs.
 * `extraSets` (the CLI's --set key=value) join the file's `set`, after it; `seeds` (the CLI's --seeds)
 * replaces the file's.
 */
export function loadSweep(file: string, extraSets: string[] = [], seedsOverride?: number[]): Sweep {
  if (!existsSync(file)) throw new ConfigError(`sweep file not found: ${file}`);
  const doc = YAML.parseDocument(readFileSync(file, 'utf8'));
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw sweepError(file, `invalid YAML at line ${pos?.line ?? '?'}, column ${pos?.col ?? '?'}`);
  }
  const raw = doc.toJS() as unknown;
  if (!isTree(raw)) throw sweepError(
    file, `must be a YAML mapping with keys ${SWEEP_KEYS.join(', ')} (got ${show(raw)})`,
  );
  for (const k of Object.keys(raw)) {
    if (!SWEEP_KEYS.includes(k)) {
      const hint = nearest(k, SWEEP_KEYS);
      throw sweepError(file, `unknown key ${k}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
  }
  let base: Tree = {};
  if (typeof raw.base === 'string') {
    const path = resolve(dirname(file), raw.base);
    base = readConfigFile(path);
  } else if (isTree(raw.base)) base = raw.base;
  else if (raw.base !== undefined) throw sweepError(
    file, `base must be a config file or a config mapping (got ${show(raw.base)})`,
  );
  const fileSet = raw.set ?? {};
  if (!isTree(fileSet)) throw sweepError(file, `set must be a mapping of dotted keys to values (got ${show(fileSet)})`);
  const set: Tree = { ...fileSet };
  for (const a of extraSets) {
    const { key, value } = parseAssignment(a);
    set[key] = value;
  }
  for (const k of Object.keys(set)) checkKey(file, 'set', k);
  const grid = raw.grid ?? {};
  if (!isTree(grid)) throw sweepError(file, `grid must be a mapping of dotted keys to lists (got ${show(grid)})`);
  for (const [k, v] of Object.entries(grid)) {
    checkKey(file, 'grid', k);
    if (!Array.isArray(v) || v.length === 0) throw sweepError(
      file, `grid.${k} must be a non-empty list (got ${show(v)})`,
    );
  }
  const runs = raw.runs ?? [{}];
  if (!Array.isArray(runs) || runs.some((r) => !isTree(r))) throw sweepError(
    file, `runs must be a list of mappings of dotted keys (got ${show(runs)})`,
  );
  (runs as Tree[]).forEach((r, i) => Object.entries(r).forEach(([k, v]) => {
    if (k !== 'label') return checkKey(file, `runs[${i}]`, k);
    if (typeof v !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v)) throw sweepError(
      file, `runs[${i}].label must be a name of letters, digits, '.', '_' or '-' (got ${show(v)})`,
    );
  }));
  const labels = (runs as Tree[]).map((r) => r.label).filter((l) => l !== undefined);
  if (new Set(labels).size !== labels.length) throw sweepError(
    file, `runs: every label must be different (got ${labels.join(', ')})`,
  );
  const record = raw.record === undefined ? ['train'] : Array.isArray(raw.record) ? raw.record : [raw.record];
  if (record.length === 0 || record.some((r) => r !== 'train' && r !== 'profile')) throw sweepError(
    file, `record must be train, profile or both (got ${show(raw.record)})`,
  );
  // the base, resolved alone first: its own errors name the base
  let baseConfig: Config;
  try {
    baseConfig = resolveConfig({ overlay: base, sets: asSets(set as Tree) }).config;
  } catch (e) {
    throw sweepError(file, `base and set: ${(e as Error).message}`);
  }
  const seeds = seedsOverride ?? raw.seeds ?? [baseConfig.seed];
  if (!Array.isArray(seeds) || seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw sweepError(
    file, `seeds must be a list of integers >= 0 (got ${show(raw.seeds)})`,
  );
  const combos = product(Object.entries(grid) as [
    string, unknown[],
  ][]).flatMap((g) => (runs as Tree[]).map((r) => ({ ...g, ...r })));
  const keys = [...new Set(combos.flatMap((c) => Object.keys(c)))];
  const width = String(combos.length * seeds.length - 1).length;
  const points: SweepPoint[] = [];
  for (const vary of combos) {
    for (const seed of seeds as number[]) {
      const index = points.length;
      const label = Object.entries(vary).map(([k, v]) => `${k}=${show(v)}`).concat(`seed=${seed}`).join(', ');
      let config: Config;
      try {
        const { label: _label, ...keysOfPoint } = vary;
        config = resolveConfig({
          overlay: base, sets: [...asSets(set as Tree), ...asSets(keysOfPoint), `seed=${seed}`],
        }).config;
        assertTrainable(config);
      } catch (e) {
        throw sweepError(file, `point ${index} (${label}): ${(e as Error).message}`);
      }
      points.push({ name: pointName(index, vary, seed, width), vary, seed, config });
    }
  }
  let baseline: Record<string, unknown> | undefined;
  if (raw.baseline !== undefined) {
    if (!isTree(raw.baseline)) throw sweepError(
      file, `baseline must be a mapping of swept keys to values (got ${show(raw.baseline)})`,
    );
    for (const k of Object.keys(raw.baseline)) if (!keys.includes(k)) throw sweepError(
      file, `baseline: ${k} is not a swept key (swept: ${keys.join(', ') || 'nothing'})`,
    );
    baseline = raw.baseline;
    const matches = combos.filter((c) => Object.entries(baseline!).every(([
      k, v,
    ]) => JSON.stringify(c[k]) === JSON.stringify(v)));
    if (matches.length !== 1) throw sweepError(
      file, `baseline must name exactly one point of the sweep (got ${matches.length} matching ${show(raw.baseline)})`,
    );
  }
  let simulate: string | undefined;
  if (raw.simulate !== undefined) {
    if (typeof raw.simulate !== 'string') throw sweepError(
      file, `simulate must be a cluster file (got ${show(raw.simulate)})`,
    );
    simulate = resolve(dirname(file), raw.simulate);
    if (!existsSync(simulate)) throw sweepError(file, `simulate: cluster file not found (got ${show(raw.simulate)})`);
  }
  const name = basename(file, extname(file));
  return {
    name, file, keys, record: { train: true, profile: record.includes('profile') }, baseline, simulate, points,
    resolved: {
      name, base: baseConfig, grid, runs: raw.runs ?? [], seeds, set, record, baseline: baseline ?? null,
      simulate: simulate ?? null, points: points.map((p) => ({ name: p.name, vary: p.vary, seed: p.seed })),
    },
  };
}
