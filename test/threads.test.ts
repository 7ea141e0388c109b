import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceError } from '../src/runtime/devices/errors.js';
import { train, type TrainSummary } from '../src/training/trainer.js';
import { cfg, cli, CORPUS, tempDir } from './helpers.js';

const tiny = (...sets: string[]) =>
  cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2',
    'model.n_layers=2', 'model.d_ff=32', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1', 'train.checkpoint_every=0',
    'moe.capacity_factor=1.0', 'model.dropout=0.1', ...sets);
const run = (t: import('ava').ExecutionContext, config: ReturnType<typeof tiny>, extra: Partial<Parameters<typeof train>[0]> = {}) =>
  train({ config, name: 't', outDir: tempDir(t), ...extra });

function sameLosses(t: import('ava').ExecutionContext, a: TrainSummary, b: TrainSummary, what: string) {
  t.is(a.losses.length, b.losses.length);
  a.losses.forEach((x, i) => t.true(Math.abs(x - b.losses[i]!) <= 1e-5 * Math.abs(x), `${what} step ${i + 1}: local ${x} vs threads ${b.losses[i]}`));
}

// D ∈ {1, 2, 4}, E ∈ {4, 8} and every drop policy (spmd.test.ts holds the other layout to the same losses)
const cases: [number, number, string][] = [
  [1, 4, 'position'], [4, 4, 'position'], [2, 8, 'position'], [4, 8, 'position'], [2, 4, 'random'], [2, 8, 'priority'],
];
for (const [D, E, policy] of cases) {
  test.serial(`threads equal local over 20 steps: devices ${D}, experts ${E}, drop_policy ${policy}`, async (t) => {
    const sets = [`parallel.devices=${D}`, `moe.n_experts=${E}`, `moe.drop_policy=${policy}`, 'train.steps=20'];
    const local = await run(t, tiny(...sets, 'parallel.transport=local'));
    const threads = await run(t, tiny(...sets, 'parallel.transport=threads'));
    sameLosses(t, local, threads, `D=${D} E=${E} ${policy}`);
  });
}

test.serial('micro-batches: 2 pipelined micro-batches equal 1 with jitter and dropout on; threads equal local with them on', async (t) => {
  const sets = ['parallel.devices=2', 'moe.n_experts=4', 'train.steps=8', 'moe.drop_policy=random'];
  const one = await run(t, tiny(...sets, 'parallel.transport=local'));
  const two = await run(t, tiny(...sets, 'parallel.transport=local', 'parallel.microbatches=2'));
  sameLosses(t, one, two, 'microbatches 1 vs 2');
  const threads = await run(t, tiny(...sets, 'parallel.transport=threads', 'parallel.microbatches=2'));
  sameLosses(t, two, threads, 'microbatches 2, local vs threads');
});

test.serial('micro-batches with drop_tokens false: each micro-batch keeps its own slots (capacities differ per micro-batch)', async (t) => {
  const sets = ['parallel.devices=4', 'moe.n_experts=4', 'train.steps=8', 'moe.drop_tokens=false', 'moe.min_capacity=1', 'train.log_every=1'];
  const one = await run(t, tiny(...sets, 'parallel.transport=local'));
  const two = await run(t, tiny(...sets, 'parallel.transport=local', 'parallel.microbatches=2'));
  sameLosses(t, one, two, 'drop_tokens false, microbatches 1 vs 2');
  const four = await run(t, tiny(...sets, 'parallel.transport=local', 'parallel.microbatches=4'));
  sameLosses(t, one, four, 'drop_tokens false, microbatches 1 vs 4');
});

test.serial('min_capacity above the tokens per group with drop_tokens false trains (capacity is clamped to the group)', async (t) => {
  const r = await run(t, tiny('parallel.devices=2', 'moe.drop_tokens=false', 'moe.min_capacity=1000', 'train.steps=2', 'parallel.microbatches=2'));
  t.is(r.losses.length, 2);
  t.true(r.losses.every(Number.isFinite));
});

for (const payload of ['transfer', 'clone']) {
  test.serial(`payload ${payload} with micro-batches and a slow device: replies touch only their own groups`, async (t) => {
    // device 1 is 40 ms late on every exchange: device 0 answers micro-batch 1 before micro-batch 0 is combined
    const sets = ['parallel.devices=2', 'moe.n_experts=4', 'train.steps=4', 'parallel.microbatches=2'];
    const local = await run(t, tiny(...sets, 'parallel.transport=local'));
    const slow = await run(t, tiny(...sets, 'parallel.transport=threads', `parallel.payload=${payload}`,
      'parallel.fault.device=1', 'parallel.fault.kind=slow', 'parallel.fault.delay_ms=40'));
    sameLosses(t, local, slow, `${payload}, slow device`);
  });
}

for (const payload of ['transfer', 'clone']) {
  test.serial(`payload ${payload} gives the same losses as shared memory`, async (t) => {
    const sets = ['parallel.devices=2', 'moe.n_experts=4', 'train.steps=6', 'parallel.transport=threads'];
    sameLosses(t, await run(t, tiny(...sets)), await run(t, tiny(...sets, `parallel.payload=${payload}`)), payload);
  });
}

test.serial('a checkpoint from threads with 2 devices resumes in-process with another device count', async (t) => {
  const dir = tempDir(t);
  await run(t, tiny('parallel.transport=threads', 'parallel.devices=2', 'train.steps=4'), { outDir: dir });
  const cont = await run(t, tiny('parallel.transport=local', 'parallel.devices=4', 'train.steps=6'), { resume: dir });
  t.is(cont.losses.length, 2);
  const same = await run(t, tiny('parallel.transport=local', 'parallel.devices=2', 'train.steps=6'), { resume: dir });
  const straight = await run(t, tiny('parallel.transport=threads', 'parallel.devices=2', 'train.steps=6'));
  same.losses.forEach((x, i) => t.true(Math.abs(x - straight.losses[4 + i]!) <= 1e-5 * x, 'resumed in-process equals uninterrupted threads'));
});

for (const [kind, transport] of (['crash', 'hang', 'throw'] as const).flatMap((k) => [[k, 'threads'], [k, 'local']] as const)) {
  test.serial(`fault ${kind} (${transport}): the step fails with an error naming the device, layer and phase; devices torn down`, async (t) => {
    const out = tempDir(t);
    const config = tiny(`parallel.transport=${transport}`, 'parallel.devices=2', 'moe.n_experts=4', 'train.steps=10', 'train.checkpoint_every=2',
      'parallel.fault.device=1', 'parallel.fault.step=3', `parallel.fault.kind=${kind}`, 'parallel.timeout_ms=1500');
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    const e = await t.throwsAsync(run(t, config, { outDir: out }));
    await new Promise((r) => setImmediate(r)); // one turn of the event loop: unhandled rejections are reported by then
    process.off('unhandledRejection', onUnhandled);
    t.deepEqual(unhandled, [], 'no unhandled rejection');
    t.true(e instanceof DeviceError, String(e));
    t.regex(e!.message, /^device 1 \(experts 2,3\) failed during forward of Switch layer 0: /);
    if (kind === 'hang') t.regex(e!.message, /no answer within parallel\.timeout_ms = 1500 ms/);
    if (kind === 'throw') t.regex(e!.message, /injected fault/);
    if (kind === 'crash') t.regex(e!.message, /exit|terminat/i);
    t.true(existsSync(join(out, 'checkpoints', 'step-2', 'checkpoint.json')), 'the last checkpoint is intact');
    const resumed = await run(t, tiny('parallel.transport=local', 'parallel.devices=2', 'moe.n_experts=4', 'train.steps=4'), { resume: out });
    t.is(resumed.losses.length, 2);
  });
}

test.serial('switch-sim train with an in-process device that hangs: exit 1, the last line names the device', async (t) => {
  const sets = [`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=2', 'model.d_model=16', 'model.n_layers=1', 'model.d_ff=16',
    'train.eval_batches=1', 'train.steps=4', 'parallel.transport=local', 'parallel.fault.device=0', 'parallel.fault.step=2',
    'parallel.fault.kind=hang', 'parallel.timeout_ms=500'];
  const r = await cli('train', ...sets.flatMap((s) => ['--set', s]), '--out', tempDir(t));
  t.is(r.status, 1, r.stderr);
  const last = r.stderr.trim().split('\n').at(-1)!;
  t.regex(last, /^error: device 0 \(experts 0,1\) failed during forward of Switch layer 0: no answer within parallel\.timeout_ms = 500 ms/);
});
