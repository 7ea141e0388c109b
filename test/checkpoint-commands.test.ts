import test from 'ava';
import fs, { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { main } from '../src/cli/main.js';
import { routeText } from '../src/apps/inspect/inspect.js';
import { evaluateCheckpoint } from '../src/training/evaluate.js';
import { inProcessConfig } from '../src/training/in-process.js';
import { sample } from '../src/training/sample.js';
import { train } from '../src/training/trainer.js';
import { cfg, CORPUS, tempDir } from './helpers.js';

// one model trained twice, in the coordinator layout and in spmd (the same losses to 1e-4), 4 steps each
const sets = [`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32',
  'moe.n_experts=4', 'parallel.devices=2', 'train.steps=4', 'train.eval_every=4', 'train.eval_batches=2', 'train.log_every=2', 'train.checkpoint_every=2'];
const runs: Record<'coordinator' | 'spmd', { dir: string; val: number }> = {} as never;
const root = mkdtempSync(join(tmpdir(), 'switch-sim-ckpt-commands-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
test.before(async () => {
  for (const layout of ['coordinator', 'spmd'] as const) {
    const dir = join(root, layout);
    const extra = layout === 'spmd' ? ['parallel.layout=spmd', 'parallel.transport=threads'] : [];
    const s = await train({ config: cfg(...sets, ...extra), name: layout, outDir: dir });
    runs[layout] = { dir, val: s.val_ce! };
  }
});

test('eval scores a coordinator and an spmd checkpoint, each as its trainer evaluated it, and the two agree', async (t) => {
  const c = await evaluateCheckpoint({ checkpoint: runs.coordinator.dir });
  const s = await evaluateCheckpoint({ checkpoint: runs.spmd.dir });
  t.true(Math.abs(c.ce - runs.coordinator.val) < 1e-5, `coordinator: eval ${c.ce} vs trainer ${runs.coordinator.val}`);
  t.true(Math.abs(s.ce - runs.spmd.val) < 1e-5, `spmd: eval ${s.ce} vs trainer ${runs.spmd.val}`);
  t.true(Math.abs(s.ce - c.ce) < 1e-4 * c.ce, `spmd ${s.ce} vs coordinator ${c.ce}`);
  t.is(s.layers.length, 2);
});

test('inspect and generate open an spmd checkpoint as they open a coordinator one', async (t) => {
  for (const layout of ['coordinator', 'spmd'] as const) {
    const r = await routeText({ checkpoint: runs[layout].dir, text: 'Call me Ishmael. Some years ago, never mind how long precisely.' });
    t.true(r.chars.length > 0, layout);
    t.deepEqual(r.blocks, [0, 1]);
    const g = await sample({ checkpoint: runs[layout].dir, prompt: 'Call', tokens: 8, temperature: 0, topK: 0, seed: 1 });
    t.is(g.text.length, 4 + 8, layout);
  }
});

test('the in-process config is validated like any config, and keeps the trained routing groups for scoring', (t) => {
  const trained = cfg(...sets, 'parallel.layout=spmd', 'parallel.transport=threads', 'parallel.backend=gpujs', 'parallel.fault.device=1');
  const scoring = inProcessConfig(trained);
  t.like(scoring.parallel, { layout: 'coordinator', transport: 'local', backend: 'wasm', devices: 2, microbatches: 1 });
  t.is(scoring.parallel.fault.device, -1);
  const sampling = inProcessConfig(trained, [], 'sample');
  t.like(sampling.parallel, { devices: 1 });
  t.is(sampling.data.batch_size, 1);
  t.throws(() => inProcessConfig(trained, ['moe.eval_capacity_factor=0']), { message: 'config error: moe.eval_capacity_factor must be > 0 (got 0)' });
  t.throws(() => inProcessConfig(trained, ['parallel.layout=spmd']), { message: /^config error: parallel\.(layout|transport) must be/ });
});

test.serial('train --resume reads and verifies the checkpoint once', async (t) => {
  const out = tempDir(t);
  const from = join(runs.coordinator.dir, 'checkpoints', 'step-2');
  t.true(existsSync(from));
  let reads = 0;
  const original = fs.readFileSync;
  fs.readFileSync = ((...a: Parameters<typeof readFileSync>) => {
    if (/weights-[0-9a-f]+\.bin$/.test(String(a[0]))) reads++;
    return original(...a);
  }) as typeof readFileSync;
  syncBuiltinESMExports();
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    t.is(await main(['train', '--resume', from, '--out', out]), 0);
  } finally {
    fs.readFileSync = original;
    syncBuiltinESMExports();
    process.stdout.write = write;
  }
  t.is(reads, 1, 'weights read once');
  t.true(existsSync(join(out, 'checkpoints', 'step-4')));
});
