import test from 'ava';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, CORPUS, interruptWhen, tempDir } from './helpers.js';

const SMALL = ['--set', `data.dataset=${CORPUS}`, '--set', 'data.seq_len=16', '--set', 'data.batch_size=2',
  '--set', 'model.d_model=16', '--set', 'model.n_layers=1', '--set', 'model.d_ff=16', '--set', 'train.eval_batches=1', '--set', 'parallel.transport=local'];

test.serial('bad config value: exit 2 and one line naming key, rule and value', async (t) => {
  const r = await cli('train', '--set', 'moe.capacity_factor=0');
  t.is(r.status, 2);
  t.is(r.stderr, 'config error: moe.capacity_factor must be > 0 (got 0)\n');
  t.is(r.stdout, '');
  t.notRegex(r.stderr, /at .*\.ts:\d+/); // no stack trace
});

test.serial('unknown flag, missing config file, missing data file, missing checkpoint: exit 2 with one line', async (t) => {
  const flag = await cli('train', '--bogus');
  t.is(flag.status, 2);
  t.regex(flag.stderr.trim(), /^error: unknown option '--bogus'$/);
  const file = await cli('train', '--config', '/nope.yaml');
  t.is(file.status, 2);
  t.is(file.stderr.trim(), 'config error: config file not found: /nope.yaml');
  const data = await cli('train', '--set', 'data.dataset=/nope.txt', '--set', 'train.steps=1');
  t.is(data.status, 2);
  t.is(data.stderr, 'config error: data.dataset file not found (got "/nope.txt")\n', 'stderr holds the one error line and nothing else');
  t.is(data.stdout, '', 'the config is printed only once every input is valid');
  const ck = await cli('generate', '--checkpoint', '/nope');
  t.is(ck.status, 2);
  t.is(ck.stderr.trim(), 'error: checkpoint not found: /nope');
  const tokens = await cli('generate', '--checkpoint', '/nope', '--tokens', 'many');
  t.is(tokens.status, 2);
  t.regex(tokens.stderr.trim(), /--tokens must be an integer >= 1 \(got "many"\)/);
});

test.serial('a config path that is a directory, and simulate\'s --out or --html under a file: exit 2, one line, before any work', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'f');
  writeFileSync(file, '');
  const model = ['--cluster', 'configs/clusters/8xh100.yaml', '--config', 'configs/models/mixtral-8x7b.yaml'];
  const cases: [string[], string][] = [
    [['train', '--config', dir], `config error: config file must be a file (got the directory ${dir})`],
    [['simulate', '--cluster', dir, '--config', 'configs/models/mixtral-8x7b.yaml'],
      `config error: config file must be a file (got the directory ${dir})`],
    [['simulate', ...model, '--out', join(file, 'x')],
      `config error: --out must be a directory path (got "${file}/x", which is under the file "${file}")`],
    [['simulate', ...model, '--search', '--html', join(file, 'x.html')],
      `config error: --html must be a file path in a directory (got "${file}/x.html", which has a directory that is a file)`],
    [['simulate', ...model, '--search', '--html', dir],
      `config error: --html must be a file path in a directory (got "${dir}", which is not a file path)`],
  ];
  for (const [args, line] of cases) {
    const r = await cli(...args);
    t.is(r.status, 2, args.join(' '));
    t.is(r.stderr, `${line}\n`);
    t.is(r.stdout, '');
  }
});

test.serial('Ctrl-C finishes the step, saves a resumable checkpoint and exits 130', async (t) => {
  const out = tempDir(t);
  const { code, stderr } = await interruptWhen(['train', ...SMALL, '--set', 'train.steps=100000', '--set', 'train.log_every=1', '--out', out], /step 3\/100000/);
  t.is(code, 130, stderr);
  t.regex(stderr, /interrupted: saved .*step-\d+; continue with --resume/);
  const gen = await cli('generate', '--checkpoint', out, '--tokens', '5', '--prompt', 'A');
  t.is(gen.status, 0, gen.stderr);
  t.is(gen.stdout.replace(/\n$/, '').length, 6); // the prompt and 5 characters (which may be whitespace)
  t.true(existsSync(join(out, 'checkpoints')));
});

test.serial('a device that crashes: exit 1 with a line naming the device; the last checkpoint is intact and resumable', async (t) => {
  const out = tempDir(t);
  const args = [...SMALL, '--set', 'parallel.transport=threads', '--set', 'train.checkpoint_every=2', '--set', 'train.steps=6'];
  const r = await cli('train', ...args, '--set', 'parallel.fault.device=1', '--set', 'parallel.fault.step=3', '--set', 'parallel.fault.kind=crash', '--out', out);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr.trim().split('\n').at(-1)!, /^error: device 1 \(experts 2,3\) failed during forward of Switch layer 0: worker exited/);
  t.true(existsSync(join(out, 'checkpoints', 'step-2', 'checkpoint.json')));
  const resumed = await cli('train', '--resume', out, '--set', 'parallel.fault.device=-1', '--out', join(out, 'resumed'));
  t.is(resumed.status, 0, resumed.stderr);
  t.regex(resumed.stdout, /resumed from step 2/);
  t.regex(resumed.stdout, /^config default\n {2}seed: 1337\n {2}data: \{dataset: /, 'the resolved config goes to stdout');
});
