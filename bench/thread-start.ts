/**
 * What starting device threads costs: a 1-step training run of a tiny model (the embedded corpus)
 * in a process of its own, with D device threads in each layout, interleaved over rounds, two ways:
 *   default        the threads loading the bundled handlers (src/runtime/threads/worker-file.ts, the default)
 *                  against registering tsx in every thread (SWITCH_SIM_WORKER_TSX=1, the fallback);
 *                  everything but the threads' start is the same, so the difference is the start
 *   --against REV  the working tree's CLI against REV's (checked out beside it, bench/against-tree.ts),
 *                  both as they start by default: what a change to starting a process or a thread saved
 *   npx tsx bench/thread-start.ts [--rounds 3] [--against REV]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg } from './common.js';
import { addRevTree, machine, workingCommit } from './against-tree.js';

const rounds = arg('rounds', 3);
const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'bin', 'switch-sim.js');
const TINY = ['data.seq_len=16', 'data.batch_size=8', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2',
  'model.d_ff=32', 'moe.n_experts=8', 'train.steps=1', 'train.warmup_steps=1', 'train.eval_every=0',
  'train.eval_batches=1', 'train.log_every=1', 'train.checkpoint_every=0'];

interface Cost { wall: number; cpu: number }

/** wall seconds and CPU seconds (user + system) of one run of a CLI */
function run(cli: string, layout: string, devices: number, tsx: boolean): Cost {
  const out = mkdtempSync(join(tmpdir(), 'switch-sim-start-'));
  try {
    const sets = [...TINY, `parallel.layout=${layout}`, `parallel.devices=${devices}`, 'parallel.transport=threads']
      .flatMap((s) => ['--set', s]);
    const t0 = performance.now();
    const time = ['-c', 'TIMEFORMAT=%U+%S; time "$@" >/dev/null', 'run'];
    const r = spawnSync('bash', [...time, process.execPath, cli, 'train', ...sets, '--out', out], {
      encoding: 'utf8', env: { ...process.env, SWITCH_SIM_WORKER_TSX: tsx ? '1' : '' },
    });
    const wall = (performance.now() - t0) / 1000;
    if (r.status !== 0)
      throw new Error(`train exited ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const cpu = r.stderr.trim().split('\n').at(-1)!.split('+').reduce((a, x) => a + Number(x), 0);
    return { wall, cpu };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

type Way = (layout: string, devices: number) => Cost;

/** per (layout, D): the two ways, taking turns; `perThread` divides the difference by D */
function table(head: [string, string], a: Way, b: Way, perThread: boolean): void {
  const saved = perThread ? 'saved per thread' : 'saved per run';
  console.log(`layout       D   ${head[0]}: wall s   cpu s   ${head[1]}: wall s   cpu s   ${saved}: wall ms  ` +
    `cpu ms   (${rounds} rounds, interleaved)`);
  for (const layout of ['coordinator', 'spmd']) {
    for (const devices of [1, 2, 4, 8]) {
      const xs: Cost[] = [];
      const ys: Cost[] = [];
      for (let i = 0; i < rounds; i++) {
        xs.push(a(layout, devices));
        ys.push(b(layout, devices));
      }
      const [aw, ac] = [mean(xs.map((x) => x.wall)), mean(xs.map((x) => x.cpu))];
      const [bw, bc] = [mean(ys.map((x) => x.wall)), mean(ys.map((x) => x.cpu))];
      const per = perThread ? devices : 1;
      const ms = (x: number) => ((x / per) * 1000).toFixed(0);
      console.log(`${layout.padEnd(12)} ${String(devices).padStart(2)}   ` +
        `${aw.toFixed(2).padStart(head[0].length + 8)} ${ac.toFixed(2).padStart(7)}   ` +
        `${bw.toFixed(2).padStart(head[1].length + 8)} ${bc.toFixed(2).padStart(7)}   ` +
        `${ms(bw - aw).padStart(saved.length + 8)} ${ms(bc - ac).padStart(6)}`);
    }
  }
}

const at = process.argv.indexOf('--against');
if (at >= 0) {
  const rev = process.argv[at + 1];
  if (!rev || rev.startsWith('--')) throw new Error(`--against wants a revision, got ${rev ?? 'nothing'}`);
  const tree = addRevTree(ROOT, rev, (line) => console.log(line));
  try {
    const theirs = join(tree.dir, 'bin', 'switch-sim.js');
    console.log(`working tree ${workingCommit(ROOT)} against ${tree.commit} (node_modules ${tree.modules}); ` +
      machine());
    table(['working', tree.commit], (l, d) => run(CLI, l, d, false), (l, d) => run(theirs, l, d, false), false);
  } finally {
    tree.remove();
  }
} else {
  table(['bundled', 'tsx in each thread'], (l, d) => run(CLI, l, d, false), (l, d) => run(CLI, l, d, true), true);
}
