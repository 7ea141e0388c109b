import test from 'ava';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS, type Config } from '../src/core/config/defaults.js';
import { loadCheckpoint, resolveCheckpointDir, saveCheckpoint } from '../src/training/checkpoint.js';
import { CheckpointError, type CheckpointData } from '../src/runtime/coordinator/restore.js';
import { cli, tempDir } from './helpers.js';


/** A small, valid checkpoint: one 2×3 matrix with its moments and a bias without them. */
function data(step: number, fill = 1): CheckpointData {
  const arr = (n: number, v: number) => new Float32Array(n).fill(v);
  return {
    step, config: structuredClone(DEFAULTS) as Config, vocab: ['a', 'b', ' '], rng: { seed: DEFAULTS.seed, step },
    arrays: [
      { name: 'w', kind: 'param', shape: [2, 3], data: arr(6, fill) },
      { name: 'w', kind: 'm', shape: [2, 3], data: arr(6, 0.1) },
      { name: 'w', kind: 'v', shape: [2, 3], data: arr(6, 0.2) },
      { name: 'b', kind: 'param', shape: [3], data: arr(3, -fill) },
    ],
  };
}

const weightsOf = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.bin'));

/** A saved checkpoint copied to a scratch directory, with its manifest edited by `edit`. */
function edited(t: import('ava').ExecutionContext, edit: (meta: Record<string, any>) => void): string {
  const dir = saveCheckpoint(tempDir(t), data(3));
  const file = join(dir, 'checkpoint.json');
  const meta = JSON.parse(readFileSync(file, 'utf8'));
  edit(meta);
  writeFileSync(file, JSON.stringify(meta));
  return dir;
}

const refused = (t: import('ava').ExecutionContext, dir: string, message: RegExp) =>
  t.throws(() => loadCheckpoint(dir), { instanceOf: CheckpointError, message });

test('a checkpoint round-trips: arrays, shapes, step, vocab', (t) => {
  const dir = saveCheckpoint(tempDir(t), data(3));
  const back = loadCheckpoint(dir);
  t.is(back.step, 3);
  t.deepEqual(back.vocab, ['a', 'b', ' ']);
  t.deepEqual(back.arrays.map((a) => [a.name, a.kind, a.shape, Array.from(a.data)]), data(3).arrays.map((a) => [a.name, a.kind, a.shape, Array.from(a.data)]));
});

test('bit-flipped and truncated weights are refused, naming the file', (t) => {
  const dir = saveCheckpoint(tempDir(t), data(3));
  const [w] = weightsOf(dir);
  const flipped = tempDir(t);
  cpSync(dir, flipped, { recursive: true });
  const bytes = readFileSync(join(flipped, w!));
  bytes[10] = bytes[10]! ^ 0x10;
  writeFileSync(join(flipped, w!), bytes);
  refused(t, flipped, /weights-[0-9a-f]+\.bin is corrupt \(sha256 /);
  truncateSync(join(dir, w!), 40);
  refused(t, dir, /weights-[0-9a-f]+\.bin has 40 bytes, its entries describe 84 \(truncated or from another checkpoint\)/);
});

test('a shape edited in checkpoint.json is refused before the weights are used', (t) => {
  refused(t, edited(t, (m) => (m.entries[0].shape = [3, 3])), /checkpoint .*checkpoint\.json: entries\[0\] \(param w\)\.length must equal the size of its shape \[3,3\] \(9\) \(got 6\)$/);
  refused(t, edited(t, (m) => (m.entries[1].offset = 0)), /entries\[1\] \(m w\)\.offset must be 6, where the previous entry ends \(got 0\)$/);
  refused(t, edited(t, (m) => { m.entries[1].shape = [3, 2]; }), /entries\[1\] \(m w\)\.shape must equal its parameter's shape \[2,3\] \(got \[3,2\]\)$/);
});

test('a deleted or mistyped field is refused, naming the field', (t) => {
  refused(t, edited(t, (m) => delete m.step), /checkpoint\.json: step is missing \(got nothing\)$/);
  refused(t, edited(t, (m) => delete m.entries[2].offset), /checkpoint\.json: entries\[2\]\.offset is missing \(got nothing\)$/);
  refused(t, edited(t, (m) => (m.entries[3].kind = 'adam')), /checkpoint\.json: entries\[3\]\.kind is invalid: .* \(got "adam"\)$/);
  refused(t, edited(t, (m) => (m.sha256 = 'xyz')), /checkpoint\.json: sha256 is invalid: .* \(got "xyz"\)$/);
  refused(t, edited(t, (m) => (m.rng.step = 9)), /checkpoint\.json: rng\.step must equal step \(3\) \(got 9\)$/);
  refused(t, edited(t, (m) => (m.config.moe.capacity_factor = -1)), /its config is invalid: config error: moe\.capacity_factor must be > 0 \(got -1\)$/);
});

test('optimizer moments must match their parameter: length and pairing', (t) => {
  const bad = data(3);
  bad.arrays[1] = { name: 'w', kind: 'm', shape: [4], data: new Float32Array(4) };
  refused(t, saveCheckpoint(tempDir(t), bad), /entries\[1\] \(m w\)\.shape must equal its parameter's shape \[2,3\] \(got \[4\]\)$/);
  const lone = data(3);
  lone.arrays.splice(2, 1); // m without v
  refused(t, saveCheckpoint(tempDir(t), lone), /entries\[1\] \(m w\) has no matching v moment/);
  const orphan = data(3);
  orphan.arrays.push({ name: 'x', kind: 'v', shape: [1], data: new Float32Array(1) });
  refused(t, saveCheckpoint(tempDir(t), orphan), /entries\[4\] \(v x\) is an optimizer moment of a parameter the checkpoint lacks/);
});

test('saving a step again replaces it: new weights beside the old, the manifest renamed over, old weights removed', (t) => {
  const root = tempDir(t);
  const dir = saveCheckpoint(root, data(5, 1));
  const first = weightsOf(dir);
  saveCheckpoint(root, data(5, 2));
  const second = weightsOf(dir);
  t.is(second.length, 1);
  t.notDeepEqual(first, second);
  t.is(loadCheckpoint(dir).arrays[0]!.data[0], 2);
  t.deepEqual(readdirSync(root), ['step-5'], 'no temporary directory left');
  t.false(existsSync(join(dir, 'checkpoint.json.tmp')));
  // a step directory without a manifest is an unfinished write: the newest complete one is used
  mkdirSync(join(root, 'step-9'));
  writeFileSync(join(root, 'step-9', 'weights-00.bin'), 'partial');
  t.is(resolveCheckpointDir(root), dir);
});

test.serial('the CLI refuses a malformed checkpoint with exit 2 and one line naming the file and field', async (t) => {
  const dir = edited(t, (m) => delete m.vocab);
  const r = await cli('generate', '--checkpoint', dir);
  t.is(r.status, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr.trim(), /^error: checkpoint .*checkpoint\.json: vocab is missing \(got nothing\)$/);
});

test('a v3 checkpoint carries its run\'s id and figures, taken as the manifest is written; a malformed one is refused; v2 has none', (t) => {
  let taken = 0;
  const record = () => ((taken += 1), { id: 'run-1', totals: { train_ms: 12.5, eval_ms: 3, checkpoint_ms: 1, tokens: 640 }, recent_ce: [4.1, 4.0] });
  const dir = saveCheckpoint(tempDir(t), data(3), record);
  t.is(taken, 1);
  const back = loadCheckpoint(dir);
  t.deepEqual(back.run, record());
  t.is(back.dir, dir);
  t.is(JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).format, 'switch-sim-checkpoint-v3');
  const bad = edited(t, (m) => (m.run = { id: 'run-1', totals: { train_ms: 1, eval_ms: 0, checkpoint_ms: 0, tokens: -5 }, recent_ce: [] }));
  refused(t, bad, /checkpoint\.json: run\.totals\.tokens is invalid: .* \(got -5\)$/);
  const v2 = edited(t, (m) => (m.format = 'switch-sim-checkpoint-v2'));
  t.is(loadCheckpoint(v2).run, undefined);
});
