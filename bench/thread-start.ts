/**
 * What starting device threads costs: a 1-step training run of a tiny model (the embedded corpus)
 * in a process of its own, with D device threads in each layout, once with the threads loading the
 * bundled handlers (src/threads/worker-file.ts, the default) and once registering tsx in every
 * thread (SWITCH_SIM_WORKER_TSX=1, the fallback), interleaved over rounds. Everything but the
 * threads' start is the same in both, so the difference is the start.
 *   npx tsx bench/thread-start.ts [--rounds 3]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg } from './common.js';

const rounds = arg('rounds', 3);
const CLI = new URL('../bin/switch-sim.js', import.meta.url).pathname;
const TINY = ['data.seq_len=16', 'data.batch_size=8', 'model.d_model=16', 'model.n_heads=2', 'model.n_layers=2', 'model.d_ff=32',
  'moe.n_experts=8', 'train.steps=1', 'train.warmup_steps=1', 'train.eval_every=0', 'train.eval_batches=1', 'train.log_every=1', 'train.checkpoint_every=0'];

/** wall seconds and CPU seconds (user + system) of one run of the CLI */
function run(layout: string, devices: number, tsx: boolean): { wall: number; cpu: number } {
  const out = mkdtempSync(join(tmpdir(), 'switch-sim-start-'));
  try {
    const sets = [...TINY, `parallel.layout=${layout}`, `parallel.devices=${devices}`, 'parallel.transport=threads'].flatMap((s) => ['--set', s]);
    const t0 = performance.now();
    const r = spawnSync('bash', ['-c', 'TIMEFORMAT=%U+%S; time "$@" >/dev/null', 'run', process.execPath, CLI, 'train', ...sets, '--out', out], {
      encoding: 'utf8', env: { ...process.env, SWITCH_SIM_WORKER_TSX: tsx ? '1' : '' },
    });
    const wall = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`train exited ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const cpu = r.stderr.trim().split('\n').at(-1)!.split('+').reduce((a, x) => a + Number(x), 0);
    return { wall, cpu };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`layout       D   bundled: wall s   cpu s   tsx in each thread: wall s   cpu s   saved per thread: wall ms  cpu ms   (${rounds} rounds, interleaved)`);
for (const layout of ['coordinator', 'spmd']) {
  for (const devices of [1, 2, 4, 8]) {
    const b: { wall: number; cpu: number }[] = [];
    const t: { wall: number; cpu: number }[] = [];
    for (let i = 0; i < rounds; i++) {
      b.push(run(layout, devices, false));
      t.push(run(layout, devices, true));
    }
    const [bw, bc, tw, tc] = [mean(b.map((x) => x.wall)), mean(b.map((x) => x.cpu)), mean(t.map((x) => x.wall)), mean(t.map((x) => x.cpu))];
    console.log(`${layout.padEnd(12)} ${String(devices).padStart(2)}   ${bw.toFixed(2).padStart(15)} ${bc.toFixed(2).padStart(7)}   ${tw.toFixed(2).padStart(26)} ${tc.toFixed(2).padStart(7)}   ${(((tw - bw) / devices) * 1000).toFixed(0).padStart(24)} ${(((tc - bc) / devices) * 1000).toFixed(0).padStart(6)}`);
  }
}
