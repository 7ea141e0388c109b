import { readFileSync, existsSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import YAML from 'yaml';
import type { ZodError } from 'zod';
import { DEFAULTS, type Config } from './defaults.js';
import { ConfigSchema } from './schema.js';
import { ConfigError, nearest, show } from './errors.js';
import { hfConfig, isHfConfig } from './hf.js';
import { megatronFlagOf, megatronOverlay } from './megatron-args.js';

type Tree = { [key: string]: unknown };
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every dotted key of the defaults, e.g. `moe.capacity_factor`. */
export function allKeys(tree: Tree = DEFAULTS as unknown as Tree, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([k, v]) => (isTree(v) ? allKeys(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

function unknownKey(key: string): ConfigError {
  const sections = [...new Set(allKeys()
    .flatMap((k) => k.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))))];
  const hint = nearest(key, [...allKeys(), ...sections]);
  return new ConfigError(`unknown key ${key}${hint ? ` (did you mean ${hint}?)` : ''}`);
}

/** Deep-merges `over` onto `base`, rejecting keys the defaults do not have. */
function merge(base: Tree, over: Tree, shape: Tree, prefix = ''): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const key = `${prefix}${k}`;
    if (!(k in shape)) throw unknownKey(key);
    const s = shape[k];
    if (isTree(s)) {
      if (!isTree(v))
        throw new ConfigError(`${key} must be a section with keys ${Object.keys(s).join(', ')} (got ${show(v)})`);
      out[k] = merge(base[k] as Tree, v, s, `${key}.`);
    } else out[k] = v;
  }
  return out;
}

/** Parses a YAML config file; syntax errors name the line and column. */
export function readConfigFile(file: string): Tree {
  if (!existsSync(file)) throw new ConfigError(`config file not found: ${file}`);
  if (statSync(file).isDirectory()) throw new ConfigError(`config file must be a file (got the directory ${file})`);
  const text = readFileSync(file, 'utf8');
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
    throw new ConfigError(`${file}: invalid YAML at ${where}: ` +
      `${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?/, '')}`);
  }
  const value = doc.toJS() ?? {};
  if (!isTree(value)) throw new ConfigError(`${file}: must be a YAML mapping of sections (got ${show(value)})`);
  return value;
}

/** A config file's tree: a Hugging Face config.json (naming architectures or model_type) as its model and moe. */
function readConfigTree(file: string): Tree {
  const tree = readConfigFile(file);
  return extname(file).toLowerCase() === '.json' && isHfConfig(tree) ? hfConfig(tree, file).tree : tree;
}

/** The keys of a section (`parallel.fault`), or undefined when `key` names no section. */
function sectionKeys(key: string): string[] | undefined {
  const keys = allKeys().filter((k) => k.startsWith(`${key}.`));
  return keys.length > 0 ? keys : undefined;
}

/** Splits `section.key=value`, the value parsed as a YAML scalar (a string if it is not one); the key must exist. */
export function parseAssignment(assignment: string): { key: string; value: unknown } {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--set must look like section.key=value (got ${show(assignment)})`);
  const key = assignment.slice(0, eq).trim();
  const raw = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = raw === '' ? '' : YAML.parse(raw);
  } catch {
    value = raw;
  }
  const inner = sectionKeys(key);
  if (inner) {
    const some = `${inner.slice(0, 3).join(', ')}${inner.length > 3 ? ', …' : ''}`;
    throw new ConfigError(`${key} is a section: set one of its keys (${some}) (got ${show(value)})`);
  }
  if (!allKeys().includes(key)) throw unknownKey(key);
  return { key, value };
}

/** Turns `section.key=value` into a nested override. */
export function parseSet(assignment: string): Tree {
  const { key, value } = parseAssignment(assignment);
  return key.split('.').reduceRight<unknown>((acc, part) => ({ [part]: acc }), value) as Tree;
}

/** A schema violation as one line: the field (after `prefix`), the rule, the value. */
export function describe(error: ZodError, config: Tree, prefix = ''): ConfigError {
  const issue = error.issues[0]!;
  const at = (path: PropertyKey[]) =>
    path.reduce<unknown>((v, p) => (isTree(v) ? v[p as string] : Array.isArray(v) ? v[p as number] : undefined),
      config);
  // an item of a flat list (plan.recompute_modules) is reported under the list's key, with the item as the
  // value; a point of a curve (a list of lists: a cluster's [x, y] points) is named by its indices
  const curve = issue.path.some((p, i) => typeof p === 'number' && Array.isArray(at(issue.path.slice(0, i + 1))));
  const key = prefix + issue.path.filter((p) => curve || typeof p !== 'number').join('.');
  const got = at(issue.path);
  const i = issue as unknown as Record<string, unknown>;
  let rule: string;
  switch (issue.code) {
    case 'too_small':
      if (i.origin === 'string' || i.origin === 'array') {
        const what = i.origin === 'string' ? 'character' : 'item';
        rule = i.minimum === 1 ? 'must not be empty' : `must have at least ${i.minimum} ${what}s`;
      } else rule = `must be ${i.inclusive ? '>=' : '>'} ${i.minimum}`;
      break;
    case 'too_big':
      rule = `must be ${i.inclusive ? '<=' : '<'} ${i.maximum}`;
      break;
    case 'invalid_type':
      if (got === undefined) rule = 'is missing';
      else if (typeof got === 'number' && !Number.isFinite(got)) rule = 'must be a finite number';
      else if (i.expected === 'int' || (i.expected === 'number' && typeof got === 'number'))
        rule = 'must be an integer';
      else if (i.expected === 'object') rule = 'must be a mapping of keys';
      else if (i.expected === 'array') rule = 'must be a list';
      else rule = `must be a ${i.expected}`;
      break;
    case 'invalid_value':
      rule = `must be one of ${(i.values as unknown[]).map(String).join('|')}`;
      break;
    case 'unrecognized_keys':
      if (prefix) return new ConfigError(`unknown key ${key ? `${key}.` : prefix}${(i.keys as string[])[0]}`);
      return unknownKey(`${key ? `${key}.` : ''}${(i.keys as string[])[0]}`);
    default:
      rule = issue.code === 'invalid_format' || issue.message.startsWith('Invalid') && typeof got === 'number'
        ? 'must be an integer' : issue.message;
  }
  return new ConfigError(`${key || 'the config'} ${rule} (got ${show(got)})`);
}

export interface ResolvedConfig {
  config: Config;
  /** Short name for run directories: the config file's base name, or `default`. */
  name: string;
  /** the Megatron-LM flags of `megatron` accepted and ignored: they change nothing switch-sim models */
  ignored?: string[];
}

/**
 * Layers defaults (or `base`, a whole config such as a checkpoint's) → `overlay` (a partial config
 * tree, such as a sweep's inline base) → file → `megatron` (a Megatron-LM command line's plan, shape and
 * batches) → `--set` overrides, then validates. Throws ConfigError.
 */
export function resolveConfig(
  opts: { file?: string; megatron?: string; sets?: string[]; base?: Tree; overlay?: Tree } = {},
): ResolvedConfig {
  const shape = DEFAULTS as unknown as Tree;
  let tree: Tree = structuredClone(opts.base ?? shape);
  if (opts.overlay) tree = merge(tree, opts.overlay, shape);
  if (opts.file) tree = merge(tree, readConfigTree(opts.file), shape);
  let flagged: { keys: Set<string>; ignored: string[] } | undefined;
  if (opts.megatron !== undefined) {
    const [m, e] = [tree.model as Tree, tree.moe as Tree];
    const base = { n_layers: Number(m.n_layers), d_ff: Number(m.d_ff), d_ff_expert: Number(e.d_ff_expert) };
    const o = megatronOverlay(opts.megatron, base);
    tree = merge(tree, o.tree, shape);
    flagged = { keys: new Set(allKeys(o.tree)), ignored: o.ignored };
  }
  for (const s of opts.sets ?? []) {
    const set = parseSet(s);
    tree = merge(tree, set, shape);
    for (const k of allKeys(set)) flagged?.keys.delete(k);
  }
  const name = opts.file ? basename(opts.file, extname(opts.file)) : 'default';
  try {
    return { config: validateConfig(tree), name, ...(flagged ? { ignored: flagged.ignored } : {}) };
  } catch (e) {
    // a rule broken by a key the Megatron-LM flags set names the flag too
    const key = e instanceof ConfigError ? /^config error: (\S+)/.exec(e.message)?.[1] : undefined;
    const flag = key && flagged?.keys.has(key) ? megatronFlagOf(key) : undefined;
    if (!flag) throw e;
    throw new ConfigError((e as Error).message.replace(key!, `${key} (${flag})`));
  }
}

/**
 * Validates a saved config tree (a checkpoint's, a run directory's). A key the tree lacks was added to
 * switch-sim after it was saved, and takes its default: every key's default keeps the behaviour that
 * switch-sim had before the key existed, so the saved run means what it meant. Unknown keys are refused.
 */
export function validateConfig(tree: unknown): Config {
  const full = isTree(tree) ? merge(DEFAULTS as unknown as Tree, tree, DEFAULTS as unknown as Tree) : tree;
  const parsed = ConfigSchema.safeParse(full);
  if (!parsed.success) throw describe(parsed.error, full as Tree);
  return parsed.data as Config;
}
