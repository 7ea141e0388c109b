// bench/against.ts's pure parts: its command line and its statistics, on numbers worked by hand.
// Nothing here trains, spawns or touches git.
import test from 'ava';
import {
  dataSets, DEFAULT_CONFIGS, MODE_SETS, MODES, PAIR_COPIES, parseAgainstArgs, UsageError,
} from '../bench/against-args.js';
import {
  compare, formatSpread, lockstepTokensPerS, measureMode, median, pairedRatios, quantile, roundOrder, spread,
} from '../bench/against-stats.js';

const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol;

test('arguments: the defaults, and paths made absolute (configs from the repository, data from the cwd)', (t) => {
  const a = parseAgainstArgs(['--against', 'HEAD~1'], '/cwd', '/repo');
  t.deepEqual(a, {
    against: 'HEAD~1', data: '', rounds: 3, steps: 40, warmup: 20,
    configs: DEFAULT_CONFIGS.map((c) => `/repo/${c}`), modes: [...MODES], trained: 0,
  });
  const b = parseAgainstArgs(['--against=abc123', '--data', '../corpora/t.txt', '--rounds', '2', '--steps=6', '--warmup', '2',
    '--configs', 'x.yaml,/abs/y.yaml', '--modes', 'spmd,local,spmd', '--trained', '600'],
  '/cwd/sub', '/repo');
  t.is(b.against, 'abc123');
  t.is(b.data, '/cwd/corpora/t.txt');
  t.is(b.rounds, 2);
  t.is(b.steps, 6);
  t.deepEqual(b.configs, ['/cwd/sub/x.yaml', '/abs/y.yaml']);
  t.deepEqual(b.modes, ['spmd', 'local']);
  t.is(b.trained, 600);
});

test('arguments: what is refused, each with a UsageError', (t) => {
  const bad = [
    [], // no --against
    ['--against', 'HEAD', '--rounds', '0'],
    ['--against', 'HEAD', '--rounds', '1.5'],
    ['--against', 'HEAD', '--steps', '20'], // not more than the 20 warm-up steps
    ['--against', 'HEAD', '--modes', 'local,gpu'],
    ['--against', 'HEAD', '--trained', '-5'],
    ['--against', 'HEAD', '--frobnicate', '1'],
    ['--against'],
  ];
  for (const argv of bad) {
    t.throws(() => parseAgainstArgs(argv, '/c', '/r'), { instanceOf: UsageError }, argv.join(' '));
  }
  t.is(parseAgainstArgs(['--against', 'HEAD', '--steps', '1', '--warmup', '0'], '/c', '/r').steps, 1);
});

test('modes and corpus: the config values each tree gets', (t) => {
  t.deepEqual(MODE_SETS.local, ['parallel.transport=local']);
  const coordinator = ['parallel.transport=threads', 'parallel.layout=coordinator', 'parallel.devices=2'];
  t.deepEqual(MODE_SETS.coordinator, coordinator);
  t.true(MODE_SETS.spmd.includes('parallel.layout=spmd') && MODE_SETS.spmd.includes('parallel.transport=threads'));
  t.deepEqual(MODE_SETS.pair, ['parallel.transport=local']); // in-process; the runner halves the batch
  t.deepEqual(MODE_SETS.half, ['parallel.transport=local']);
  t.is(PAIR_COPIES, 2);
  t.deepEqual(dataSets(''), ['data.dataset=moby-dick']);
  t.deepEqual(dataSets('/d/ts.txt'), ['data.dataset=tinyshakespeare', 'data.path=/d/ts.txt']);
});

test('median and quartiles: linear interpolation between order statistics', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 3, 2]), 2.5);
  // sorted 10, 20, 30, 40, 50: q1 at position 1 → 20; q3 at 3 → 40; p 0.1 at 0.4 → 14
  t.is(quantile([10, 20, 30, 40, 50], 0.25), 20);
  t.true(close(quantile([10, 20, 30, 40, 50], 0.1), 14));
  // four values 1, 2, 4, 8: q1 at 0.75 → 1.75; q3 at 2.25 → 5
  t.deepEqual(spread([8, 1, 4, 2]), { n: 4, median: 3, q1: 1.75, q3: 5, min: 1, max: 8 });
  t.deepEqual(spread([7]), { n: 1, median: 7, q1: 7, q3: 7, min: 7, max: 7 });
  t.true(Number.isNaN(spread([]).median));
});

test('working/REV is paired by round, not the ratio of medians', (t) => {
  // rounds: 1000/800, 1200/1000, 900/1000 → 1.25, 1.2, 0.9: median 1.2, range 0.9–1.25
  const cmp = compare([1000, 1200, 900], [800, 1000, 1000]);
  t.deepEqual(cmp.ratios, [1.25, 1.2, 0.9]);
  t.is(cmp.ratio.median, 1.2);
  t.is(cmp.ratio.min, 0.9);
  t.is(cmp.ratio.max, 1.25);
  t.is(cmp.working.median, 1000);
  t.is(cmp.rev.median, 1000); // the medians' ratio would say 1.00
  t.deepEqual(pairedRatios([2, 3, 4], [1, 1]), [2, 3]);
});

test('order within a round alternates; cells format as median (min–max)', (t) => {
  const orders = [0, 1, 2, 3].map(roundOrder);
  t.deepEqual(orders, [['working', 'rev'], ['rev', 'working'], ['working', 'rev'], ['rev', 'working']]);
  t.is(formatSpread(spread([12000, 12500, 12345])), '12345 (12000–12500)');
  t.is(formatSpread(spread([1.25, 1.2, 0.9]), { ratio: true }), '1.20x (0.90–1.25)');
  t.is(formatSpread(spread([0.987]), { ratio: true }), '0.99x');
});

test('pair: both runs\' tokens over the slower run\'s step time', (t) => {
  // 1024 + 1024 tokens a step; the slower run takes 16 ms a step: 2048 / 0.016 = 128000 tokens/s
  t.true(close(lockstepTokensPerS([{ tokens_per_step: 1024, ms_per_step: 12 }, { tokens_per_step: 1024, ms_per_step: 16 }]),
    128000));
  // one run alone: its own tokens/s (1024 / 0.008 = 128000)
  t.true(close(lockstepTokensPerS([{ tokens_per_step: 1024, ms_per_step: 8 }]), 128000));
});

test('measureMode: pair runs two half batches at once, half runs one alone and counts it twice', async (t) => {
  const asked: (number | undefined)[] = [];
  // a fake runner: 2048 tokens a step at the full batch; the k-th half-batch call takes 12, 16, … ms a step
  const one = async (divisor?: number) => {
    asked.push(divisor);
    const d = divisor ?? 1;
    const ms = d === 1 ? 20 : 12 + 4 * (asked.length - 1);
    return { tokens_per_s: (2048 / d) / (ms / 1000), ms_per_step: ms, counted_steps: 10, tokens_per_step: 2048 / d };
  };
  const local = await measureMode('local', one);
  t.deepEqual(asked, [undefined]);
  t.true(close(local.tokens_per_s, 102400)); // 2048 / 0.020
  asked.length = 0;
  const pair = await measureMode('pair', one);
  t.deepEqual(asked, [2, 2], 'two runs at half the batch');
  // the slower one (16 ms) sets the pace: 2048 / 0.016
  t.true(close(pair.tokens_per_s, 128000) && close(pair.ms_per_step, 16) && pair.tokens_per_step === 2048);
  asked.length = 0;
  const half = await measureMode('half', one);
  t.deepEqual(asked, [2], 'one run at half the batch');
  // its 12 ms a step, counted twice: 2048 / 0.012
  t.true(close(half.tokens_per_s, 2048 / 0.012) && close(half.ms_per_step, 12) && half.tokens_per_step === 2048);
});
