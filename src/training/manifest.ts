import { z } from 'zod';
import { show } from '../core/config/errors.js';
import { CheckpointError } from '../runtime/coordinator/restore.js';

/** The checkpoint's manifest: what weights file holds which arrays, and how to check it. */
export const MANIFEST = 'checkpoint.json';

const int = (min: number) => z.number().int().min(min);

const EntrySchema = z.strictObject({
  name: z.string().min(1),
  kind: z.enum(['param', 'm', 'v']),
  shape: z.array(int(1)),
  offset: int(0),
  length: int(0),
});

/**
 * The run a checkpoint belongs to (v3): its id, which `--resume` checks against the run directory's, and
 * the run's cumulative figures up to this step, which a resumed run carries on from. `totals` is null
 * once part of the run was trained by a version that did not record them (unknown, not guessed).
 */
const RunSchema = z.strictObject({
  id: z.string().min(1),
  totals: z.strictObject({ train_ms: z.number().min(0), eval_ms: z.number().min(0), checkpoint_ms: z.number().min(0),
    tokens: int(0) }).nullable(),
  /** the training cross-entropies of the last log_every steps, for summary.json's train_ce */
  recent_ce: z.array(z.number()),
});

const ManifestSchema = z.strictObject({
  format: z.enum(['switch-sim-checkpoint-v1', 'switch-sim-checkpoint-v2', 'switch-sim-checkpoint-v3']),
  step: int(0),
  config: z.record(z.string(), z.unknown()),
  vocab: z.array(z.string().refine((c) => Array.from(c).length === 1, 'must be one character')).min(1),
  rng: z.strictObject({ seed: int(0), step: int(0) }),
  /** v1 checkpoints have weights.bin and no field */
  weights: z.string().regex(/^weights(-[0-9a-f]+)?\.bin$/).default('weights.bin'),
  entries: z.array(EntrySchema).min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** v1 and v2 checkpoints have none */
  run: RunSchema.optional(),
});

export type Entry = z.infer<typeof EntrySchema>;
export type Manifest = z.infer<typeof ManifestSchema>;
export type RunRecord = z.infer<typeof RunSchema>;
export type RunTotalsRecord = NonNullable<RunRecord['totals']>;

const fail = (file: string, field: string, rule: string, got: unknown) =>
  new CheckpointError(`checkpoint ${file}: ${field} ${rule} (got ${show(got)})`);

/**
 * Validates a parsed checkpoint.json before anything in it is used: every field's type, then every
 * entry's length against its shape, the entries tiling the weights file in order, each (name, kind)
 * once, and every optimizer moment matching its parameter.
 */
export function checkManifest(raw: unknown, file: string): Manifest {
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`))
      .join('') || 'the manifest';
    const got = issue.path.reduce<unknown>((v, p) =>
      (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p as string] : undefined), raw);
    const rule = issue.code === 'invalid_type' && got === undefined ? 'is missing' : `is invalid: ${issue.message}`;
    throw fail(file, field, rule, got);
  }
  const m = parsed.data;
  if (m.rng.step !== m.step) throw fail(file, 'rng.step', `must equal step (${m.step})`, m.rng.step);
  let next = 0;
  const seen = new Map<string, Entry>();
  m.entries.forEach((e, i) => {
    const at = `entries[${i}] (${e.kind} ${e.name})`;
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.length !== size)
      throw fail(file, `${at}.length`, `must equal the size of its shape [${e.shape}] (${size})`, e.length);
    if (e.offset !== next) throw fail(file, `${at}.offset`, `must be ${next}, where the previous entry ends`, e.offset);
    next += e.length;
    const key = `${e.kind} ${e.name}`;
    if (seen.has(key)) throw fail(file, at, 'appears twice', e.name);
    seen.set(key, e);
  });
  for (const [i, e] of m.entries.entries()) {
    if (e.kind === 'param') continue;
    const p = seen.get(`param ${e.name}`);
    const at = `entries[${i}] (${e.kind} ${e.name})`;
    if (!p) throw fail(file, at, 'is an optimizer moment of a parameter the checkpoint lacks', e.name);
    if (e.length !== p.length || e.shape.join() !== p.shape.join())
      throw fail(file, `${at}.shape`, `must equal its parameter's shape [${p.shape}]`, e.shape);
    if (!seen.has(`${e.kind === 'm' ? 'v' : 'm'} ${e.name}`))
      throw fail(file, at, `has no matching ${e.kind === 'm' ? 'v' : 'm'} moment`, e.name);
  }
  return m;
}
