/**
 * One measurement for bench/against.ts, in a process of its own: trains --config for --steps steps
 * (no evaluation, no checkpoints) with the given --set values, and prints one JSON line: tokens/s and
 * ms/step over the steps after the first --warmup (which include starting the backend and the threads).
 *   node --import tsx bench/against-runner.ts --config FILE --steps N --warmup W [--batch-divisor K]
 *     [--checkpoint DIR/checkpoints/step-N] [--set key=value ...]
 * --batch-divisor K trains at the config's data.batch_size ÷ K (bench/against.ts's `pair` and `half` modes).
 * --checkpoint DIR/checkpoints/step-N continues from that checkpoint (a run of the same config file) for
 * --steps more steps, into a directory of its own (the checkpoint's run is left as it is): bench/against.ts
 * --trained N, so that the steps measured are a trained model's, not the first steps of a fresh one.
 * bench/against.ts copies this file into the other revision's worktree, so that both trees are timed
 * the same way; it only needs resolveConfig and train (by their module paths, else src/index.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What this runner uses of a tree's src/, typed loosely: the revisions' own types may differ. */
interface Api {
  resolveConfig: (opts: { file?: string; sets?: string[] })
    => { config: { data: { batch_size: number; seq_len: number } } };
  train: (opts: { config: never; name: string; outDir?: string; resume?: string; onStep?: () => void;
    log?: (l: string) => void }) => Promise<unknown>;
}

async function api(): Promise<Api> {
  try {
    const [{ resolveConfig }, { train }] = await Promise.all([
      import('../src/core/config/load.js'), import('../src/training/trainer.js')]);
    return { resolveConfig, train } as unknown as Api;
  } catch {
    return (await import('../src/index.js')) as unknown as Api;
  }
}

function flag(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) throw new Error(`against-runner: --${name} is required`);
  return v;
}

const steps = Number(flag('steps'));
const warmup = Number(flag('warmup'));
const sets = process.argv.flatMap((a, i) => (a === '--set' ? [process.argv[i + 1]!] : []));
const divisor = process.argv.includes('--batch-divisor') ? Number(flag('batch-divisor')) : 1;
const resume = process.argv.includes('--checkpoint') ? flag('checkpoint') : undefined;
// the steps already taken: the checkpoint's directory is named step-N
const done = resume === undefined ? 0 : Number(/step-(\d+)$/.exec(resume.replace(/\/+$/, ''))?.[1] ?? NaN);
if (Number.isNaN(done))
  throw new Error(`against-runner: --checkpoint ${resume} is not a …/checkpoints/step-N directory`);
const { resolveConfig, train } = await api();
const resolve = (more: string[]) => resolveConfig({
  file: flag('config'),
  sets: [...sets, `train.steps=${done + steps}`, 'train.eval_every=0', 'train.checkpoint_every=0',
    // the last step is the only one logged
    'train.eval_batches=1', `train.log_every=${done + steps}`, 'train.warmup_steps=1', ...more],
}).config;
let config = resolve([]);
if (divisor !== 1) {
  const batch = config.data.batch_size / divisor;
  if (!Number.isInteger(batch) || batch < 1)
    throw new Error(`against-runner: data.batch_size ${config.data.batch_size} is not divisible by ${divisor}`);
  config = resolve([`data.batch_size=${batch}`]);
}
const dir = mkdtempSync(join(tmpdir(), 'switch-sim-against-run-'));
// bench/against.ts ends a run with SIGTERM (and Ctrl-C reaches it too): remove the run, then die of the signal
const onSignal = (signal: NodeJS.Signals) => {
  rmSync(dir, { recursive: true, force: true });
  process.kill(process.pid, signal);
};
for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, onSignal);
const times: number[] = [];
try {
  let last = performance.now();
  const onStep = () => { const now = performance.now(); times.push(now - last); last = now; };
  await train({ config: config as never, name: 'against', outDir: dir, resume, onStep, log: () => {} });
} finally {
  rmSync(dir, { recursive: true, force: true });
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, onSignal);
}
// a tree whose train() took no `resume` would have trained from scratch, done + steps steps: not what was asked
if (times.length !== steps) throw new Error(`against-runner: ${times.length} steps ran, ${steps} asked`);
const counted = times.slice(warmup);
const ms = counted.reduce((a, b) => a + b, 0) / counted.length;
const tokensPerStep = config.data.batch_size * config.data.seq_len;
const result = {
  tokens_per_s: tokensPerStep / (ms / 1000),
  ms_per_step: ms,
  counted_steps: counted.length,
  tokens_per_step: tokensPerStep,
};
console.log(JSON.stringify(result));
