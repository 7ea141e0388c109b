import test from 'ava';
import { pipelineSplit, type PipelineSplitInput } from '../src/core/config/pipeline-split.js';

/** Megatron-Core's split, hand-worked (research notes on NVIDIA/Megatron-LM transformer_block.py and transformer_layer.py). */
const input = (o: Partial<PipelineSplitInput>): PipelineSplitInput =>
  ({ layers: 8, pp: 1, vpp: 1, first: 0, last: 0, embedding: false, loss: false, ...o });
/** Each rank's chunks as [start, end) ranges, stage by stage. */
const ranges = (o: Partial<PipelineSplitInput>) =>
  pipelineSplit(input(o)).chunks.map((rank) => rank.map((c) => [c.start, c.start + c.count]));
const refusal = (o: Partial<PipelineSplitInput>) => {
  try {
    pipelineSplit(input(o));
    return 'accepted';
  } catch (e) {
    return (e as Error).message.replace(/^config error: /, '');
  }
};

test('Qwen3-235B-A22B: 94 blocks on pp 8 × vpp 4 with the embedding and the loss as slots, 3 slots a chunk', (t) => {
  // 96 slots / 8 ranks = 12 a rank, 3 a chunk; chunk (stage a, rank b) starts at 24a + 3b − 1, (0, 0) at 0
  const s = pipelineSplit(input({ layers: 94, pp: 8, vpp: 4, embedding: true, loss: true }));
  t.is(s.rule, 'accounting');
  t.deepEqual(s.chunks[0]![0], { rank: 0, stage: 0, start: 0, count: 2, embedding: true, loss: false });
  t.deepEqual(s.chunks[7]![3], { rank: 7, stage: 3, start: 92, count: 2, embedding: false, loss: true });
  for (const rank of s.chunks) {
    for (const c of rank) {
      if ((c.rank === 0 && c.stage === 0) || (c.rank === 7 && c.stage === 3)) continue;
      t.deepEqual([c.start, c.count], [24 * c.stage + 3 * c.rank - 1, 3], `rank ${c.rank} stage ${c.stage}`);
      t.false(c.embedding || c.loss);
    }
  }
  t.is(s.chunks.flat().reduce((n, c) => n + c.count, 0), 94);
  // no first/last pair works with vpp 4: 94 ≡ 2 (mod 4)
  t.is(refusal({ layers: 94, pp: 8, vpp: 4, first: 10 }), 'plan.decoder_first_pipeline_num_layers must be divisible by plan.vpp (4) (got 10)');
  t.is(refusal({ layers: 94, pp: 8, vpp: 4, first: 8, last: 8 }),
    'plan.vpp must divide the 13 blocks of each rank between first and last (got 4)');
  t.is(refusal({ layers: 94, pp: 8, vpp: 4, embedding: true }),
    'plan.pp must divide model.n_layers (94) plus the embedding slot (95) (got 8)');
});

test('uneven first and last with virtual stages: 94 blocks, pp 8, vpp 2, first 6, last 4 (14 on each middle rank)', (t) => {
  const s = pipelineSplit(input({ layers: 94, pp: 8, vpp: 2, first: 6, last: 4 }));
  t.is(s.rule, 'first_last');
  // stage 0: 3, then 7 on each of ranks 1–6, then 2 = 47 blocks; stage 1 the same from 47
  const stage = (from: number) => [[from, from + 3], ...[0, 1, 2, 3, 4, 5].map((i) => [from + 3 + 7 * i, from + 10 + 7 * i]),
    [from + 45, from + 47]];
  const [s0, s1] = [stage(0), stage(47)];
  t.deepEqual(ranges({ layers: 94, pp: 8, vpp: 2, first: 6, last: 4 }), s0.map((r, i) => [r, s1[i]]));
  t.deepEqual(s.chunks[7]![1], { rank: 7, stage: 1, start: 92, count: 2, embedding: false, loss: true });
  // DeepSeek-V3's recipe (61 blocks, pp 16, first 4, last 1): 4 on every rank but the last
  t.deepEqual(ranges({ layers: 61, pp: 16, first: 4, last: 1 }).map((r) => r[0]![1]! - r[0]![0]!), [...new Array(15).fill(4), 1]);
  t.deepEqual(ranges({ layers: 10, pp: 3, last: 2 }), [[[0, 4]], [[4, 8]], [[8, 10]]], 'last alone: the others share the rest');
});

test("the even split: Megatron-Core's docstring example, 8 blocks on pp 2 with vpp 4 and vpp 2", (t) => {
  t.deepEqual(ranges({ pp: 2, vpp: 4 }), [[[0, 1], [2, 3], [4, 5], [6, 7]], [[1, 2], [3, 4], [5, 6], [7, 8]]]);
  t.deepEqual(ranges({ pp: 2, vpp: 2 }), [[[0, 2], [4, 6]], [[2, 4], [6, 8]]]);
  const s = pipelineSplit(input({ pp: 2, vpp: 2 }));
  t.is(s.rule, 'even');
  t.true(s.chunks[0]![0]!.embedding && s.chunks[1]![1]!.loss, 'embedding and loss sit at the ends even when not counted');
  t.deepEqual(ranges({ layers: 4, pp: 2, loss: true, embedding: true }), [[[0, 2]], [[2, 4]]], '6 slots: 3 a rank');
});

test('the remainder split (a departure: Megatron-Core refuses): the first layers mod (pp · vpp) chunks take one more', (t) => {
  const deepseek = ranges({ layers: 61, pp: 16 }).map((r) => r[0]![1]! - r[0]![0]!);
  t.deepEqual(deepseek, [...new Array(13).fill(4), 3, 3, 3], '61 = 13 · 4 + 3 · 3');
  // 10 blocks in 4 chunks: layer order (stage 0, rank 0), (0, 1), (1, 0), (1, 1) gets 3, 3, 2, 2
  t.deepEqual(ranges({ layers: 10, pp: 2, vpp: 2 }), [[[0, 3], [6, 8]], [[3, 6], [8, 10]]]);
  t.is(pipelineSplit(input({ layers: 10, pp: 2, vpp: 2 })).rule, 'remainder');
});

test('each refused combination is one line naming the key, the rule and the value', (t) => {
  const cases: [Partial<PipelineSplitInput>, string][] = [
    [{ vpp: 2 }, 'plan.vpp must be 1 without pipeline parallelism (plan.pp 1) (got 2)'],
    [{ pp: 2, first: 4, embedding: true }, 'plan.decoder_first_pipeline_num_layers must be 0 with '
      + 'plan.account_for_embedding_in_pipeline_split or plan.account_for_loss_in_pipeline_split (Megatron-Core takes one '
      + 'or the other) (got 4)'],
    [{ last: 8 }, 'plan.decoder_last_pipeline_num_layers must be 0 with plan.pp 1: one rank holds every block (got 8)'],
    [{ pp: 2, vpp: 2, first: 4, last: 3 }, 'plan.decoder_last_pipeline_num_layers must be divisible by plan.vpp (2) (got 3)'],
    [{ pp: 2, first: 3, last: 3 }, 'plan.decoder_first_pipeline_num_layers must add up with '
      + 'plan.decoder_last_pipeline_num_layers (3) to model.n_layers (8): plan.pp 2 leaves no rank between first and last (got 3)'],
    [{ pp: 4, first: 4, last: 3 }, 'plan.decoder_first_pipeline_num_layers must leave a block for each of the 2 ranks '
      + 'between first and last (model.n_layers (8) − first (4) − last (3) = 1) (got 4)'],
    [{ pp: 3, first: 7 }, 'plan.decoder_first_pipeline_num_layers must leave a block for each of the 2 ranks between '
      + 'first and last (model.n_layers (8) − first (7) − last (0) = 1) (got 7)'],
    [{ pp: 4, last: 3 }, 'plan.decoder_last_pipeline_num_layers must leave blocks that the 3 ranks between first and last '
      + 'share equally (model.n_layers (8) − first (0) − last (3) = 5) (got 3)'],
    [{ layers: 7, pp: 3, vpp: 2, first: 2, last: 2 }, 'plan.vpp must divide the 3 blocks of each rank between first and last (got 2)'],
    [{ layers: 8, pp: 4, loss: true }, 'plan.pp must divide model.n_layers (8) plus the loss slot (9) (got 4)'],
    [{ layers: 10, pp: 2, vpp: 4, embedding: true, loss: true }, "plan.vpp must divide each rank's 6 block slots "
      + '(model.n_layers (10) plus the embedding and loss slots, over plan.pp) (got 4)'],
    [{ pp: 9 }, 'plan.pp must be at most model.n_layers (8) (got 9)'],
    [{ pp: 3, vpp: 3 }, 'plan.pp × plan.vpp (3) must be at most model.n_layers (8): every virtual stage needs a block (got 3)'],
  ];
  for (const [o, line] of cases) t.is(refusal(o), line, JSON.stringify(o));
});
