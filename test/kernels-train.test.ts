import test from 'ava';
import { train } from '../src/training/trainer.js';
import { cfg, CORPUS, tempDir } from './helpers.js';

/**
 * parallel.kernels fused against the tfjs reference: every router and expert option trains to the same
 * losses (1e-4 relative, 20 steps) on both paths, in-process and in both layouts on device threads
 * (the coordinator's, and spmd).
 */
const small = (...sets: string[]) =>
  cfg(`data.dataset=${CORPUS}`, 'data.seq_len=16', 'data.batch_size=4', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32',
    'model.switch_every=1', 'train.log_every=1', 'train.eval_every=0', 'train.eval_batches=1', 'train.checkpoint_every=0', 'parallel.devices=2',
    'moe.n_experts=4', 'train.steps=20', ...sets);

const OPTIONS: [string, string[]][] = [
  ['softmax top-1, balance loss, relu, position drops, dropout', ['moe.capacity_factor=1', 'model.dropout=0.1']],
  ['sigmoid top-2, aux-free bias, gelu, random drops', ['moe.score=sigmoid', 'moe.top_k=2', 'moe.balance=aux_free', 'moe.bias_update_rate=0.01',
    'model.activation=gelu', 'moe.drop_policy=random', 'moe.capacity_factor=1']],
  ['hash routing, swiglu, no drops', ['moe.router=hash', 'moe.balance=none', 'model.activation=swiglu', 'moe.drop_tokens=false']],
  ['top-2 sequence-wise loss, gates × 2.5 unnormalised, priority drops, a shared expert', ['moe.top_k=2', 'moe.balance=seq_aux_loss',
    'moe.topk_scaling=2.5', 'moe.norm_topk=false', 'moe.drop_policy=priority', 'moe.shared_experts=1', 'moe.capacity_factor=1']],
  ['16 fine-grained swiglu experts, top-4, a shared expert, gates not scaled by the score', ['moe.n_experts=16', 'moe.d_ff_expert=8',
    'moe.top_k=4', 'moe.shared_experts=1', 'model.activation=swiglu', 'moe.scale_by_prob=false', 'moe.capacity_factor=1.5']],
];

const RUNS: [string, string[]][] = [
  ['fused in-process', ['parallel.kernels=fused', 'parallel.transport=local']],
  ['fused on device threads', ['parallel.kernels=fused', 'parallel.transport=threads']],
  ['tfjs spmd', ['parallel.kernels=tfjs', 'parallel.layout=spmd', 'parallel.transport=threads']],
  ['fused spmd', ['parallel.kernels=fused', 'parallel.layout=spmd', 'parallel.transport=threads']],
];

for (const [name, sets] of OPTIONS) {
  test.serial(`${name}: fused kernels give tfjs's losses in-process, on device threads and in spmd (1e-4, 20 steps)`, async (t) => {
    const ref = await train({ config: small(...sets, 'parallel.kernels=tfjs', 'parallel.transport=local'), name: 't', outDir: tempDir(t) });
    t.is(ref.losses.length, 20);
    for (const [how, run] of RUNS) {
      const got = await train({ config: small(...sets, ...run), name: 't', outDir: tempDir(t) });
      got.losses.forEach((l, i) => {
        t.true(Math.abs(l - ref.losses[i]!) <= 1e-4 * Math.abs(ref.losses[i]!), `${how} step ${i + 1}: ${l} vs tfjs in-process ${ref.losses[i]}`);
      });
    }
  });
}
