/**
 * What this machine gives spmd D = 2 before any switch-sim code runs: two threads doing the same fixed work,
 * with and without meeting at a barrier after each piece, against one thread alone. The work is the fused
 * kernels' own matrix product (fused.wasm's gemm, an expert's first layer on 128 rows at tiny-shakespeare's width:
 * 128×128 · 128×256), repeated to make pieces of about --piece milliseconds, each thread on operands of its own.
 *   npx tsx bench/lockstep.ts [--run-ms MS] [--rounds R] [--piece MS,MS,...]
 * Per piece length, three modes take turns in each round (alone, free, lockstep), each in fresh threads
 * doing N pieces, N = --run-ms (default 1000) ÷ the piece length, at least 50: short runs taken in turns, so
 * that this machine's drift (its cores' speed changes from one second to the next) falls on every mode alike.
 *   alone     one thread, N pieces
 *   free      two threads, N pieces each, never waiting for each other: what the two cores give two busy
 *             threads (slower thread's time)
 *   lockstep  two threads, N pieces each, both meeting at core/comm/barrier.ts's Barrier after every piece
 *             (spmd's exchange meets about 25 times a tiny-shakespeare step, 9 a tiny-moe step)
 * Printed per piece length: ms per piece in each mode, median (min–max) over rounds, and the ratios
 * free/alone (the two cores slowing each other), lockstep/free (what waiting for the slower thread at every
 * piece costs), and 2·alone/lockstep: the most two lockstepped devices give over one thread here.
 * No model, no tfjs: what it shows is the machine's, not switch-sim's.
 */
import { readFileSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Barrier, allocateBarrier } from '../src/core/comm/barrier.js';

const M = 128, K = 128, N = 256;
const KERNELS = new URL('../src/core/model/kernels/fused.wasm', import.meta.url);

interface Job { barrier?: SharedArrayBuffer; rank: number; pieces: number; reps: number }
interface Done { ms: number }

/** A thread's work: `pieces` pieces of `reps` gemm calls, meeting the others after each when given a barrier. */
function work(job: Job): Done {
  const memory = new WebAssembly.Memory({ initial: 256 }); // 16 MB
  const k = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(KERNELS)), { env: { memory } })
    .exports as Record<string, (...a: number[]) => void>;
  const f32 = new Float32Array(memory.buffer);
  const [a, b, c, s] = [M * K, K * N, M * N, K * N].reduce<number[]>((ptrs, n, i, all) =>
    [...ptrs, i === 0 ? 1 << 20 : ptrs[i - 1]! + all[i - 1]! * 4 + 64], []);
  for (let i = 0; i < (M * K + K * N); i++) f32[(a! >> 2) + i] = Math.sin(i);
  const gemm = () => k.gemm!(a!, K, 1, b!, c!, M, K, N, 0, 0, s!);
  for (let i = 0; i < 20; i++) gemm(); // compiled and warm
  const barrier = job.barrier ? new Barrier(job.barrier, job.rank) : undefined;
  barrier?.wait();
  const t0 = performance.now();
  for (let p = 0; p < job.pieces; p++) {
    for (let r = 0; r < job.reps; r++) gemm();
    barrier?.wait();
  }
  return { ms: performance.now() - t0 };
}

if (!isMainThread) {
  parentPort!.postMessage(work(workerData as Job));
} else {
  const flag = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1]! : fallback;
  };
  const runMs = Number(flag('run-ms', '1000'));
  const rounds = Number(flag('rounds', '11'));
  const lengths = flag('piece', '0.5,2,10').split(',').map(Number);
  // a thread does not inherit tsx (Node 20): it registers it, then loads this file
  const self = JSON.stringify(import.meta.url);
  const entry = `import('tsx/esm/api').then(({ register }) => { register(); return import(${self}); })`;
  const run = (jobs: Job[]) => Promise.all(jobs.map((job) => new Promise<Done>((resolve, reject) => {
    const w = new Worker(entry, { eval: true, workerData: job });
    w.once('message', (m: Done) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  })));
  // one gemm call's time, to size the pieces
  const [probe] = await run([{ rank: 0, pieces: 50, reps: 1 }]);
  const callMs = probe!.ms / 50;
  const spread = (xs: number[]) => {
    const s = [...xs].sort((x, y) => x - y);
    return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
  };
  const fmt = (xs: number[], digits = 3) => {
    const s = spread(xs);
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  console.log(`one gemm 128x128·128x256 (fused.wasm): ${callMs.toFixed(3)} ms alone; runs of about ${runMs} ms, `
    + `${rounds} rounds; ms per piece (slower thread), median (min–max) over rounds; ratios per round`);
  console.log('| piece asked | gemms | alone | free (2 threads) | lockstep (2 threads) | free/alone | lockstep/free '
    + '| 2·alone/lockstep |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const length of lengths) {
    const reps = Math.max(1, Math.round(length / callMs));
    const pieces = Math.max(50, Math.round(runMs / length));
    const per = { alone: [] as number[], free: [] as number[], lockstep: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      const slowest = (d: Done[]) => Math.max(...d.map((x) => x.ms)) / pieces;
      per.alone.push(slowest(await run([{ rank: 0, pieces, reps }])));
      per.free.push(slowest(await run([0, 1].map((rank) => ({ rank, pieces, reps })))));
      const barrier = allocateBarrier(2);
      per.lockstep.push(slowest(await run([0, 1].map((rank) => ({ barrier, rank, pieces, reps })))));
    }
    const ratio = (x: number[], y: number[], f = 1) => fmt(x.map((v, i) => (f * v) / y[i]!), 2);
    console.log(`| ${length} ms | ${reps} | ${fmt(per.alone)} | ${fmt(per.free)} | ${fmt(per.lockstep)} | `
      + `${ratio(per.free, per.alone)} | ${ratio(per.lockstep, per.free)} | ${ratio(per.alone, per.lockstep, 2)} |`);
  }
}
