import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, statSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/defaults.js';
import { validateConfig } from '../config/load.js';
import { CheckpointError } from './errors.js';

export const FORMAT = 'switch-sim-checkpoint-v1';

/** One named array in weights.bin. */
interface Entry {
  name: string;
  /** 'param' | 'm' | 'v' */
  kind: string;
  shape: number[];
  offset: number;
  length: number;
}

export interface CheckpointData {
  step: number;
  config: Config;
  vocab: string[];
  /** where the random streams stand: every stream is (seed, purpose, step), so the step is the state */
  rng: { seed: number; step: number };
  arrays: { name: string; kind: string; shape: number[]; data: Float32Array }[];
}

function writeSynced(file: string, data: string | Uint8Array): void {
  writeFileSync(file, data);
  const fd = openSync(file, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

/** Writes DIR/step-N atomically: everything goes to a temporary directory, which is then renamed. */
export function saveCheckpoint(dir: string, data: CheckpointData): string {
  mkdirSync(dir, { recursive: true });
  const final = join(dir, `step-${data.step}`);
  const tmp = join(dir, `.step-${data.step}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  let offset = 0;
  const entries: Entry[] = data.arrays.map((a) => {
    const e = { name: a.name, kind: a.kind, shape: a.shape, offset, length: a.data.length };
    offset += a.data.length;
    return e;
  });
  const blob = new Float32Array(offset);
  data.arrays.forEach((a, i) => blob.set(a.data, entries[i]!.offset));
  const bytes = new Uint8Array(blob.buffer);
  writeSynced(join(tmp, 'weights.bin'), bytes);
  const meta = {
    format: FORMAT, step: data.step, config: data.config, vocab: data.vocab, rng: data.rng, entries,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
  writeSynced(join(tmp, 'checkpoint.json'), JSON.stringify(meta));
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  return final;
}

/** A run directory's newest checkpoint, or the checkpoint directory itself. */
export function resolveCheckpointDir(path: string): string {
  const p = resolve(path);
  if (!existsSync(p)) throw new CheckpointError(`checkpoint not found: ${path}`);
  if (existsSync(join(p, 'checkpoint.json'))) return p;
  const ckdir = existsSync(join(p, 'checkpoints')) ? join(p, 'checkpoints') : p;
  const steps = readdirSync(ckdir)
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && statSync(join(ckdir, m[0])).isDirectory())
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  if (steps.length === 0) throw new CheckpointError(`no checkpoint in ${path} (expected checkpoint.json or checkpoints/step-N)`);
  return join(ckdir, steps[0]![0]);
}

export function loadCheckpoint(path: string): CheckpointData {
  const dir = resolveCheckpointDir(path);
  let meta: { format?: string; step: number; config: unknown; vocab: string[]; rng: { seed: number; step: number }; entries: Entry[]; sha256: string };
  try {
    meta = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8'));
  } catch (e) {
    throw new CheckpointError(`checkpoint ${dir}: checkpoint.json is unreadable (${(e as Error).message})`);
  }
  if (meta.format !== FORMAT) throw new CheckpointError(`checkpoint ${dir}: format must be ${FORMAT} (got ${JSON.stringify(meta.format)})`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(dir, 'weights.bin'));
  } catch {
    throw new CheckpointError(`checkpoint ${dir}: weights.bin is missing`);
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== meta.sha256) throw new CheckpointError(`checkpoint ${dir}: weights.bin is corrupt (sha256 ${sha.slice(0, 12)}…, expected ${String(meta.sha256).slice(0, 12)}…)`);
  const blob = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let config: Config;
  try {
    config = validateConfig(meta.config);
  } catch (e) {
    throw new CheckpointError(`checkpoint ${dir}: its config is invalid: ${(e as Error).message}`);
  }
  return {
    step: meta.step, config, vocab: meta.vocab, rng: meta.rng,
    arrays: meta.entries.map((e) => ({ name: e.name, kind: e.kind, shape: e.shape, data: blob.subarray(e.offset, e.offset + e.length) })),
  };
}
