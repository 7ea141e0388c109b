import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../core/config/defaults.js';
import { resolveConfig, validateConfig, type ResolvedConfig } from '../core/config/load.js';
import { fsyncPath, moveDirIntoPlace, readJson, writeFileAtomic, writeFileDurable } from '../core/util/fs.js';
import { CheckpointError, type CheckpointData } from '../runtime/coordinator/restore.js';
import { checkManifest, MANIFEST, type Entry, type Manifest, type RunRecord } from './manifest.js';

export const FORMAT = 'switch-sim-checkpoint-v3';

/**
 * A checkpoint as read from disk: its data, the directory it was read from, and the run it belongs to (none
 * before v3).
 */
export interface LoadedCheckpoint extends CheckpointData {
  dir: string;
  run: RunRecord | undefined;
}

/**
 * Writes DIR/step-N so that a crash at any moment leaves either the old checkpoint or the new one:
 * - a new step is built in a temporary directory, flushed, and renamed into place;
 * - an existing step gets its new weights beside the old ones under a content-addressed name
 *   (weights-<sha256 prefix>.bin), then a new checkpoint.json renamed over the old one (which
 *   switches from old to new in one step), and only then are the old weights removed.
 * `run` gives the run's record as the manifest is written (after the weights), so that the cumulative
 * times it carries include this checkpoint's own writing up to that moment.
 */
export function saveCheckpoint(dir: string, data: CheckpointData, run?: () => RunRecord): string {
  mkdirSync(dir, { recursive: true });
  let offset = 0;
  const entries: Entry[] = data.arrays.map((a) => {
    const e = { name: a.name, kind: a.kind, shape: a.shape, offset, length: a.data.length };
    offset += a.data.length;
    return e;
  });
  const blob = new Float32Array(offset);
  data.arrays.forEach((a, i) => blob.set(a.data, entries[i]!.offset));
  const bytes = new Uint8Array(blob.buffer);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const weights = `weights-${sha256.slice(0, 16)}.bin`;
  const manifest = (): Manifest => ({
    format: FORMAT, step: data.step, config: data.config, vocab: data.vocab, rng: data.rng, weights, entries, sha256,
    ...(run ? { run: run() } : {}),
  });
  const final = join(dir, `step-${data.step}`);
  if (!existsSync(join(final, MANIFEST))) {
    const tmp = join(dir, `.step-${data.step}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    writeFileDurable(join(tmp, weights), bytes);
    writeFileDurable(join(tmp, MANIFEST), JSON.stringify(manifest()));
    fsyncPath(tmp);
    moveDirIntoPlace(tmp, final); // a directory there without checkpoint.json is an unfinished write
    return final;
  }
  const exists = existsSync(join(final, weights)) && statSync(join(final, weights)).size === bytes.length;
  if (!exists) writeFileDurable(join(final, weights), bytes); // same name means same bytes: never rewrite a file in use
  writeFileAtomic(join(final, MANIFEST), JSON.stringify(manifest()), { durable: true });
  for (const f of readdirSync(final))
    if (/^weights(-[0-9a-f]+)?\.bin$/.test(f) && f !== weights) rmSync(join(final, f));
  fsyncPath(final);
  return final;
}

/**
 * The step directories of a checkpoints/ folder, newest first (`complete`: with a manifest; an unfinished
 * write has none).
 */
export function checkpointSteps(ckdir: string): { step: number; dir: string; complete: boolean }[] {
  if (!existsSync(ckdir)) return [];
  return readdirSync(ckdir)
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: join(ckdir, m[0]), complete: existsSync(join(ckdir, m[0], MANIFEST)) }))
    .sort((a, b) => b.step - a.step);
}

/** A run directory's newest complete checkpoint, or the checkpoint directory itself. */
export function resolveCheckpointDir(path: string): string {
  const p = resolve(path);
  if (!existsSync(p)) throw new CheckpointError(`checkpoint not found: ${path}`);
  if (existsSync(join(p, MANIFEST))) return p;
  const ckdir = existsSync(join(p, 'checkpoints')) ? join(p, 'checkpoints') : p;
  if (!statSync(ckdir).isDirectory()) throw new CheckpointError(`checkpoint must be a directory (got ${path})`);
  const newest = checkpointSteps(ckdir).find((s) => s.complete);
  if (!newest) throw new CheckpointError(`no checkpoint in ${path} (expected ${MANIFEST} or checkpoints/step-N)`);
  return newest.dir;
}

/**
 * Reads and verifies a checkpoint: manifest fields, every entry against its shape and the file, the sha256,
 * the config.
 */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  const dir = resolveCheckpointDir(path);
  const file = join(dir, MANIFEST);
  const raw: unknown = readJson(file, (p) => {
    throw new CheckpointError(`checkpoint ${file} is unreadable (${p.reason})`);
  });
  const meta = checkManifest(raw, file);
  const weightsFile = join(dir, meta.weights);
  let bytes: Buffer;
  try {
    bytes = readFileSync(weightsFile);
  } catch {
    throw new CheckpointError(`checkpoint ${dir}: ${meta.weights} is missing`);
  }
  const floats = meta.entries.reduce((a, e) => a + e.length, 0);
  if (bytes.length !== floats * 4) {
    throw new CheckpointError(`checkpoint ${weightsFile} has ${bytes.length} bytes, its entries describe ` +
      `${floats * 4} (truncated or from another checkpoint)`);
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== meta.sha256)
    throw new CheckpointError(`checkpoint ${weightsFile} is corrupt (sha256 ${sha.slice(0, 12)}…, expected ` +
      `${meta.sha256.slice(0, 12)}…)`);
  let config: Config;
  try {
    config = validateConfig(meta.config);
  } catch (e) {
    throw new CheckpointError(`checkpoint ${file}: its config is invalid: ${(e as Error).message}`);
  }
  const blob = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return {
    dir, run: meta.run, step: meta.step, config, vocab: meta.vocab, rng: meta.rng,
    arrays: meta.entries.map((e) =>
      ({ name: e.name, kind: e.kind, shape: e.shape, data: blob.subarray(e.offset, e.offset + e.length) })),
  };
}

/**
 * The config of a command that continues from a checkpoint (train --resume, profile --checkpoint): the
 * checkpoint's config is the base, a config file and --set apply on top. Without a checkpoint, the defaults.
 */
export function configOverCheckpoint(opts: { checkpoint?: string; file?: string; sets: string[] }):
  ResolvedConfig & { checkpoint: LoadedCheckpoint | undefined } {
  // read and verified once: the caller restores this
  const checkpoint = opts.checkpoint ? loadCheckpoint(opts.checkpoint) : undefined;
  const base = checkpoint?.config as unknown as Record<string, unknown> | undefined;
  return { ...resolveConfig({ file: opts.file, sets: opts.sets, base }), checkpoint };
}
