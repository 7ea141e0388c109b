import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../src/training/checkpoint.js';
import { train } from '../src/training/trainer.js';
import { routeText } from '../src/apps/inspect/inspect.js';
import { cfg, cli, CORPUS, tempDir } from './helpers.js';

/**
 * Every router and expert option of today's MoE models trains the same in both layouts (the
 * coordinator in-process, spmd on device threads: the same losses within 1e-4 over 20 steps), and a
 * run resumed from a checkpoint continues with exactly the unbroken run's losses.
 */
const small = (...sets: string[]) =>
  cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32',
    'model.switch_every=1', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1', 'train.checkpoint_every=0', 'parallel.devices=2', 'moe.n_experts=4', ...sets);
const spmd = (...sets: string[]) => small('parallel.layout=spmd', 'parallel.transport=threads', ...sets);
const records = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => 'loss' in r);

const OPTIONS: [string, string[]][] = [
  ['sigmoid top-2, aux-free balancing', ['moe.score=sigmoid', 'moe.top_k=2', 'moe.balance=aux_free', 'moe.bias_update_rate=0.01']],
  ['softmax top-1, aux-free balancing', ['moe.balance=aux_free', 'moe.bias_update_rate=0.01']],
  ['top-2 with the sequence-wise balance loss, gates × 2.5', ['moe.top_k=2', 'moe.balance=seq_aux_loss', 'moe.topk_scaling=2.5']],
  ['hash layers', ['moe.router=hash', 'moe.balance=none']],
  ['device-limited top-2 (one device of two per token)', ['moe.top_k=2', 'moe.route_group_topk=1']],
  ['fine-grained experts (16 of a quarter the size, top-4) and a shared expert, SwiGLU', ['moe.n_experts=16', 'moe.d_ff_expert=8', 'moe.top_k=4', 'moe.shared_experts=1', 'model.activation=swiglu']],
];

for (const [name, sets] of OPTIONS) {
  test.serial(`${name}: spmd and device threads give the in-process coordinator's losses (1e-4, 20 steps)`, async (t) => {
    const all = [...sets, 'train.steps=20', 'moe.capacity_factor=1'];
    const dir = tempDir(t);
    const ref = await train({ config: small(...all), name: 't', outDir: dir });
    for (const [how, config] of [['spmd', spmd(...all)], ['device threads', small(...all, 'parallel.transport=threads')]] as const) {
      const got = await train({ config, name: 't', outDir: tempDir(t) });
      t.is(got.losses.length, 20);
      got.losses.forEach((l, i) => t.true(Math.abs(l - ref.losses[i]!) <= 1e-4 * Math.abs(ref.losses[i]!), `${how} step ${i + 1}: ${l} vs in-process ${ref.losses[i]}`));
    }
    const last = records(dir).at(-1)!;
    if (sets.includes('moe.balance=aux_free')) {
      const bias = last.layers[0].expert_bias as number[];
      t.is(bias.length, 4);
      t.true(bias.some((b) => b !== 0), `the biases moved: ${bias}`);
      t.is(last.balance_loss, 0, 'no balance loss');
    }
    if (sets.includes('moe.route_group_topk=1')) t.is(last.layers[0].groups_per_token, 1, 'every token\'s two experts on one device');
    else if (sets.includes('moe.top_k=2')) t.true(last.layers[0].groups_per_token > 1, 'unlimited top-2 spans both devices for some tokens');
  });
}

test.serial('aux-free biases live in checkpoints: a resumed run continues with exactly the unbroken run\'s losses, in either layout', async (t) => {
  const sets = ['moe.score=sigmoid', 'moe.top_k=2', 'moe.balance=aux_free', 'moe.bias_update_rate=0.01'];
  const whole = await train({ config: small(...sets, 'train.steps=6'), name: 't', outDir: tempDir(t) });
  for (const [first, second] of [[small, small], [spmd, small], [small, spmd]] as const) {
    const dir = tempDir(t);
    await train({ config: first(...sets, 'train.steps=3', 'train.checkpoint_every=3'), name: 't', outDir: dir });
    const ckpt = loadCheckpoint(join(dir, 'checkpoints'));
    t.true(ckpt.arrays.some((a) => a.name.endsWith('router.bias') && Array.from(a.data).some((v) => v !== 0)), 'the checkpoint holds the moved biases');
    const resumed = await train({ config: second(...sets, 'train.steps=6'), name: 't', resume: dir });
    if (first === second) t.deepEqual(resumed.losses, whole.losses.slice(3), 'bit-equal in the same layout');
    else resumed.losses.forEach((l, i) => t.true(Math.abs(l - whole.losses[3 + i]!) <= 1e-4 * whole.losses[3 + i]!, `across layouts, step ${4 + i}`));
  }
});

test.serial('a device-limited run: eval and inspect open its checkpoint (each character\'s experts on one device), profile its config (the shared experts\' span)', async (t) => {
  const dir = tempDir(t);
  const sets = ['moe.n_experts=8', 'moe.top_k=2', 'moe.route_group_topk=1', 'moe.shared_experts=1', 'train.steps=4', 'train.checkpoint_every=4'];
  await train({ config: small(...sets), name: 't', outDir: dir });
  const r = await routeText({ checkpoint: dir });
  t.true(r.chars.length > 0);
  t.true(r.chars.every((c) => c.experts.length === 2 && new Set(c.groups).size === 1), 'both experts of every character on one device');
  const ev = await cli('eval', '--checkpoint', dir, '--batches', '1');
  t.is(ev.status, 0, ev.stderr);
  const prof = join(dir, 'profile');
  const p = await cli('profile', '--config', join(dir, 'config.yaml'), '--steps', '1', '--warmup', '0', '--out', prof);
  t.is(p.status, 0, p.stderr);
  const trace = readFileSync(join(prof, 'trace.json'), 'utf8');
  t.regex(trace, /"name":"shared_experts"/);
});
