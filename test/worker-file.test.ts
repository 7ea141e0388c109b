import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { workerFile, workerStart } from '../src/runtime/threads/worker-file.js';
import { CORPUS, tempDir } from './helpers.js';

const exec = promisify(execFile);
const CLI = new URL('../bin/switch-sim.js', import.meta.url).pathname;

test('device threads start from one bundle, named by its content, with every source\'s own import.meta.url', async (t) => {
  const url = await workerFile('wasm');
  t.is(await workerFile('cpu'), url, 'built once per process');
  for (const dawn of ['webgpu', 'gpujs']) t.regex(await workerFile(dawn), /worker-entry\.mjs$/, `${dawn} threads start through tsx`);
  const path = fileURLToPath(url);
  t.regex(path, /node_modules\/\.cache\/switch-sim\/worker-[0-9a-f]{16}\.mjs$/);
  const code = readFileSync(path);
  t.true(path.endsWith(`worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`), 'the name is the content hash');
  const text = code.toString();
  t.false(/tsx\/esm\/api/.test(text), 'no TypeScript loader in the threads');
  t.regex(text, /export \{[^}]*\bdevice\b[^}]*\breplica\b[^}]*\}|export \{[^}]*\breplica\b[^}]*\bdevice\b[^}]*\}/, 'both handlers exported');
  // attention.wasm is read beside its source, not beside the bundle
  t.true(text.includes(JSON.stringify(new URL('../src/core/model/kernels/attention-wasm.ts', import.meta.url).href)));
  t.is(text.split('import.meta.url').length - 1, 1, 'only the banner\'s require reads the bundle\'s own URL');
});

test('threads do not inherit the parent\'s tsx flags (ava runs this file with --import=tsx)', async (t) => {
  t.true(process.execArgv.some((a) => /tsx/.test(a)), `this process has tsx among its flags: ${process.execArgv.join(' ')}`);
  const start = await workerStart('wasm');
  t.is(start.filename, await workerFile('wasm'));
  t.false(start.execArgv.some((a) => /tsx/.test(a)), start.execArgv.join(' '));
  t.deepEqual(start.execArgv, process.execArgv.filter((a) => !/tsx/.test(a) && a !== '--import'), 'every other flag kept');
});

/** the losses of a 3-step run through the CLI, its device threads loaded one way or the other */
async function losses(t: import('ava').ExecutionContext, layout: string, tsx: boolean): Promise<number[]> {
  const out = join(tempDir(t), 'run');
  const sets = [`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2',
    'model.d_ff=32', 'moe.n_experts=4', 'train.steps=3', 'train.warmup_steps=1', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1',
    'train.checkpoint_every=0', `parallel.layout=${layout}`, 'parallel.devices=2', 'parallel.transport=threads'];
  const { stderr } = await exec(process.execPath, [CLI, 'train', ...sets.flatMap((s) => ['--set', s]), '--out', out], {
    env: { ...process.env, SWITCH_SIM_WORKER_TSX: tsx ? '1' : '', SWITCH_SIM_DEBUG: '1' },
  });
  t.is(/loading TypeScript through tsx/.test(stderr), tsx, `threads loaded ${tsx ? 'through tsx' : 'from the bundle'}: ${stderr.trim()}`);
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).flatMap((r) => (r.loss === undefined ? [] : [r.loss]));
}

for (const layout of ['coordinator', 'spmd']) {
  test(`${layout}: threads started through tsx (the fallback) train to the same losses as threads started from the bundle`, async (t) => {
    const [bundled, throughTsx] = await Promise.all([losses(t, layout, false), losses(t, layout, true)]);
    t.is(bundled.length, 3);
    t.deepEqual(throughTsx, bundled);
  });
}
