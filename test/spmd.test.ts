import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Dataset } from '../src/core/data/batches.js';
import { CharTokenizer } from '../src/core/data/tokenizer.js';
import { DeviceError } from '../src/runtime/devices/errors.js';
import { SpmdSession } from '../src/runtime/spmd/session.js';
import { learningRate } from '../src/training/schedule.js';
import { train } from '../src/training/trainer.js';
import { assertTraceNests, cfg, cli, CORPUS, tempDir } from './helpers.js';
import { assertPageRenders } from './browser.js';
import { profileSpmdRun } from '../src/apps/profile/run.js';
import type { TraceEvent } from '../src/core/instrument/trace.js';
import { allocateAllReduce, AllReduce, sliceOf } from '../src/core/comm/all-reduce.js';
import { allocateBarrier, Barrier } from '../src/core/comm/barrier.js';
import { allocateReduce, GradReduce } from '../src/runtime/spmd/reduce.js';

const small = (...sets: string[]) =>
  cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32',
    'model.switch_every=1', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1', 'train.checkpoint_every=0', ...sets);
const spmd = (...sets: string[]) => small('parallel.layout=spmd', 'parallel.transport=threads', ...sets);
const records = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

function close(t: { true(v: boolean, m: string): void }, a: number[], b: number[], what: string, tol = 1e-4): void {
  a.forEach((l, i) => t.true(Math.abs(l - b[i]!) <= tol * Math.abs(b[i]!), `${what} step ${i + 1}: spmd ${l} vs coordinator ${b[i]}`));
}

// (D devices, E experts) pairs covering D ∈ {1, 2, 4} and E ∈ {4, 8}; each pair runs every drop policy,
// top-1 or top-2 alternating so that over the pairs every (policy, top-k) runs twice: 20 steps against the
// coordinator layout (in-process) with the same seed. (The whole grid, every pair with all six
// combinations, passes too; it takes twice as long.)
for (const [p, [D, E]] of [[1, 4], [2, 4], [2, 8], [4, 8]].entries()) {
  test.serial(`spmd gives the coordinator's losses (1e-4, 20 steps) with ${D} devices, ${E} experts, every drop policy`, async (t) => {
    for (const [i, policy] of ['position', 'random', 'priority'].entries()) {
      const k = 1 + ((p + i) % 2);
      const sets = [`parallel.devices=${D}`, `moe.n_experts=${E}`, `moe.drop_policy=${policy}`, `moe.top_k=${k}`, 'moe.capacity_factor=1', 'train.steps=20', 'model.dropout=0.1'];
      const ref = await train({ config: small(...sets), name: 't', outDir: tempDir(t) });
      const got = await train({ config: spmd(...sets), name: 't', outDir: tempDir(t) });
      t.is(got.losses.length, 20);
      close(t, got.losses, ref.losses, `${policy} top-${k}`);
      t.true(Math.abs(got.val_ce! - ref.val_ce!) <= 1e-4 * ref.val_ce!, `${policy} top-${k} val_ce ${got.val_ce} vs ${ref.val_ce}`);
    }
  });
}

test.serial('spmd without dropping (drop_tokens false) also matches, and metrics carry the all-reduce and barrier figures', async (t) => {
  const sets = ['moe.drop_tokens=false', 'train.steps=6', 'parallel.devices=2'];
  const ref = await train({ config: small(...sets), name: 't', outDir: tempDir(t) });
  const dir = tempDir(t);
  const got = await train({ config: spmd(...sets), name: 't', outDir: dir });
  close(t, got.losses, ref.losses, 'no drops');
  const rec = records(dir).find((r) => r.step === 6)!;
  for (const k of ['allreduce_ms', 'allreduce_wait_ms', 'norm_wait_ms', 'optimizer_ms']) t.true(rec[k] >= 0, `${k} = ${rec[k]}`);
  t.is(rec.device_memory.length, 2);
  t.is(rec.layers[0].device_compute_ms.length, 2);
  t.true(rec.layers[0].device_compute_ms.every((ms: number) => ms > 0), 'each device reports its own expert compute');
});

test.serial('replicas stay identical bit for bit: dense weights and AdamW moments hash the same on every device; ' +
  '9 barriers per step', async (t) => {
  const config = spmd('parallel.devices=4', 'moe.n_experts=4', 'model.dropout=0.1');
  const tok = CharTokenizer.fromText(readFileSync(CORPUS, 'utf8'));
  const data = new Dataset(tok, readFileSync(CORPUS, 'utf8'), 0.1, 16);
  const s = await SpmdSession.create(config, tok.vocabSize);
  try {
    const before = await s.digests();
    for (let step = 1; step <= 5; step++) {
      const b = data.batch('train', 1, step, 4);
      await s.trainStep(b.x, b.y, 4, step);
      await s.step(learningRate(step, config.train), step);
    }
    const after = await s.digests();
    t.is(new Set(before).size, 1);
    t.is(new Set(after).size, 1, after.join(' '));
    t.not(after[0], before[0], 'the replicas did change');
    // two per exchange (2 Switch layers, forward and backward), one for the gradients' sum and global norm
    const barrier = (s as unknown as { barrier: Barrier }).barrier;
    t.deepEqual(barrier.arrivals(), [45, 45, 45, 45], 'barriers over 5 steps');
  } finally {
    await s.close();
  }
});

test.serial('one request a step: with a plan the devices take the optimizer step at once, to the same bits as ' +
  'train then step; unlogged steps leave router_entropy uncomputed; step() at another lr is refused', async (t) => {
  const config = spmd('parallel.devices=2', 'moe.n_experts=4', 'moe.balance=aux_free', 'moe.bias_update_rate=0.01');
  const tok = CharTokenizer.fromText(readFileSync(CORPUS, 'utf8'));
  const data = new Dataset(tok, readFileSync(CORPUS, 'utf8'), 0.1, 16);
  const [two, one] = [await SpmdSession.create(config, tok.vocabSize), await SpmdSession.create(config, tok.vocabSize)];
  try {
    for (let step = 1; step <= 4; step++) {
      const b = data.batch('train', 1, step, 4);
      const lr = learningRate(step, config.train);
      const a = await two.trainStep(b.x, b.y, 4, step);
      const na = await two.step(lr, step);
      const logged = step % 2 === 0;
      const c = await one.trainStep(b.x, b.y, 4, step, { lr, logged });
      const nc = await one.step(lr, step);
      t.is(c.loss, a.loss, `step ${step} loss`);
      t.is(nc.gradNorm, na.gradNorm, `step ${step} grad norm`);
      // aux-free biases move by the load each device read from the shared counts, as by the main thread's sum
      t.deepEqual(c.layers.map((l) => l.expert_bias), a.layers.map((l) => l.expert_bias));
      t.true(a.layers.every((l) => l.router_entropy > 0));
      t.true(c.layers.every((l, i) => (logged ? l.router_entropy === a.layers[i]!.router_entropy
        : Number.isNaN(l.router_entropy))), `step ${step} router_entropy`);
    }
    t.deepEqual(await one.digests(), await two.digests());
    const b = data.batch('train', 1, 5, 4);
    await one.trainStep(b.x, b.y, 4, 5, { lr: 1e-3, logged: true });
    await t.throwsAsync(() => one.step(2e-3, 5), { message: /stepped at lr 0.001 \(step 5\), asked for lr 0.002/ });
  } finally {
    await two.close();
    await one.close();
  }
});

test('the spmd reduction: all-reduce\'s sum and the separate norm pass\'s Σ‖g‖², bit for bit (1 device)', (t) => {
  const P = 1001;
  const g = Float32Array.from({ length: P }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  const ref = new AllReduce(allocateAllReduce(1, P), 0, new Barrier(allocateBarrier(1), 0));
  ref.own.set(g);
  ref.run();
  const { from, to } = sliceOf(P, 1, 0);
  let own = 0;
  for (let i = from; i < to; i++) own += ref.sum[i]! * ref.sum[i]!;
  own += 0.125; // the experts' share
  const mine = new GradReduce(allocateReduce(1, P), 0, new Barrier(allocateBarrier(1), 0));
  for (const step of [1, 2, 3]) { // the rows alternate between two generations; each starts at zero
    t.is(mine.generation, (step - 1) % 2);
    t.true(mine.ownRow(mine.generation).every((v) => v === 0));
    mine.ownRow(mine.generation).set(g);
    const r = mine.run(0.125);
    t.deepEqual(mine.sum, ref.sum);
    t.is(r.gradNorm, Math.sqrt(own));
  }
});

test.serial('checkpoints go either way between the layouts: resumed runs continue with the unbroken run\'s losses', async (t) => {
  const sets = ['train.steps=6', 'train.checkpoint_every=3'];
  const whole = await train({ config: small(...sets), name: 't', outDir: tempDir(t) });
  for (const [first, second] of [[spmd, small], [small, spmd]] as const) {
    const dir = tempDir(t);
    await train({ config: first('train.steps=3', 'train.checkpoint_every=3'), name: 't', outDir: dir });
    const resumed = await train({ config: second(...sets), name: 't', resume: dir });
    close(t, resumed.losses, whole.losses.slice(3), 'resumed');
  }
});

for (const kind of ['crash', 'throw', 'hang'] as const) {
  test.serial(`spmd fault ${kind}: an error naming the device, nobody hangs, and the last checkpoint resumes`, async (t) => {
    const dir = tempDir(t);
    const faulty = spmd('train.steps=6', 'train.checkpoint_every=2', 'parallel.fault.device=1', 'parallel.fault.step=4', `parallel.fault.kind=${kind}`, 'parallel.timeout_ms=2000');
    const e = await t.throwsAsync(train({ config: faulty, name: 't', outDir: dir }), { instanceOf: DeviceError });
    t.is(e!.device, 1);
    t.regex(e!.message, /^device 1 \(experts 2,3\) failed during training step: /);
    if (kind === 'hang') t.regex(e!.message, /no answer within 2000 ms/);
    if (kind === 'throw') t.regex(e!.message, /injected fault/);
    const resumed = await train({ config: spmd('train.steps=6', 'train.checkpoint_every=2'), name: 't', resume: dir });
    t.deepEqual(records(resumed.dir).filter((r) => 'loss' in r).map((r) => r.step), [1, 2, 3, 4, 5, 6]);
  });
}

test.serial('spmd config rules: one line naming the field, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['parallel.transport=local'], /^config error: parallel\.transport must be threads with parallel\.layout spmd/],
    [['parallel.microbatches=2'], /^config error: parallel\.microbatches must be 1 with parallel\.layout spmd/],
    [['parallel.backend=webgpu'], /^config error: parallel\.backend must equal parallel\.coordinator_backend \(wasm\) or be gpujs with parallel\.layout spmd/],
  ];
  for (const [sets, re] of cases) {
    const r = await cli('train', '--set', 'parallel.layout=spmd', ...sets.flatMap((s) => ['--set', s]));
    t.is(r.status, 2, r.stderr);
    t.regex(r.stderr.trim(), re);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
});

test.serial('profile of an spmd run: per-pair bytes and barrier waits on the trace, a summary per device, a page that renders', async (t) => {
  const dir = tempDir(t);
  const { report } = await profileSpmdRun({ config: spmd('parallel.devices=2', 'data.batch_size=8', 'data.seq_len=32'), name: 'test', steps: 3, warmup: 2, outDir: dir });
  const trace = JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8')) as { traceEvents: TraceEvent[] };
  const slices = trace.traceEvents.filter((e) => e.ph === 'X');
  const steps = new Set(report.steps);
  t.is(steps.size, 3);
  for (const d of [0, 1]) {
    const mine = slices.filter((e) => e.pid === 2 + d && steps.has((e.args as { step: number }).step));
    t.true(mine.some((e) => e.name === 'stage_forward' && e.tid === 1), `device ${d}: its dense work on its compute thread`);
    t.true(mine.filter((e) => e.name === 'barrier_wait').length >= 3 * 4, `device ${d}: two barriers per exchange, forward and backward`);
    t.true(mine.some((e) => e.name === 'allreduce'));
    // per-pair message sizes: each pack says how many bytes it sent to each device
    const sent = [0, 0];
    for (const e of mine.filter((x) => x.name === 'pack' && (x.args as { dir: string }).dir === 'fwd')) (e.args as { bytes_to_device: number[] }).bytes_to_device.forEach((b, q) => (sent[q]! += b));
    sent.forEach((b, q) => t.true(Math.abs(b / 3 - report.dispatch_bytes_per_step[d]![q]!) < 1e-6, `device ${d} → ${q}: trace ${b / 3} vs profile ${report.dispatch_bytes_per_step[d]![q]}`));
  }
  // 2 Switch layers × 128 tokens per group (8·32 / 2), top-1: each device dispatches at most 2·128 rows of 16 floats a step
  for (const row of report.dispatch_bytes_per_step) t.true(row.reduce((a, b) => a + b, 0) <= 2 * 128 * 16 * 4 && row.reduce((a, b) => a + b, 0) > 0);
  assertTraceNests(t, slices); // every thread nests: an event either contains the next or ends before it starts
  t.true(report.devices.every((d) => d.dense_ms > 0 && d.expert_ms > 0 && d.barrier_share >= 0 && d.barrier_share < 1));
  t.true(report.devices.some((d) => d.barrier_wait_ms > 0), 'someone waits for the slower device');
  // the two causes add up to the waits (wait-split.ts; its arithmetic is tested by hand in profile-waits.test.ts)
  for (const d of report.devices)
    t.true(Math.abs(d.wait_rows_ms + d.wait_speed_ms - d.barrier_wait_ms) < 1e-9
      && d.wait_rows_ms >= 0 && d.wait_speed_ms >= 0, `device ${d.device}: ${d.wait_rows_ms} + ${d.wait_speed_ms} vs ` +
      `${d.barrier_wait_ms}`);
  for (const d of report.devices)
    t.true(d.allreduce_wait_ms <= d.allreduce_ms && d.allreduce_wait_ms <= d.wait_speed_ms + 1e-9);
  await assertPageRenders(t, join(dir, 'profile.html'), ['devices']);
});
