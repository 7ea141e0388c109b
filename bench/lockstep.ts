/**
 * What this machine gives spmd D = 2 before any switch-sim code runs: two threads doing the same fixed work,
 * with and without meeting at a barrier after each piece, against one thread alone. The work is the fused
 * kernels' own matrix product (gemm of fused-fma.wasm, else fused.wasm, the file training loads, compiled
 * optimized at once as training compiles it: a 128-row block of an expert's first layer at tiny-shakespeare's
 * width, 128×128 · 128×256), repeated to make pieces of about --piece milliseconds, each thread on operands of
 * its own.
 *   npx tsx bench/lockstep.ts [--run-ms MS] [--rounds R] [--piece MS,MS,...]
 * Per piece length, three modes take turns in each round (alone, free, lockstep), each in fresh threads
 * doing N pieces, N = --run-ms (default 1000) ÷ the piece length, at least 50: short runs taken in turns, so
 * that this machine's drift (its cores' speed changes from one second to the next) falls on every mode alike.
 *   alone     one thread, N pieces
 *   free      two threads, N pieces each, starting together and then never waiting for each other: what
 *             the two cores give two busy threads (slower thread's time)
 *   lockstep  two threads, N pieces each, both meeting at core/comm/barrier.ts's Barrier after every piece
 *             (spmd's exchange meets about 25 times a tiny-shakespeare step, 9 a tiny-moe step)
 * Printed per piece length: ms per piece in each mode, median (min–max) over rounds, and the ratios
 * free/alone (the two cores slowing each other), lockstep/free (what waiting for the slower thread at every
 * piece costs), and 2·alone/lockstep: the most two lockstepped devices give over one thread here.
 * No model, no tfjs: what it shows is the machine's, not switch-sim's. A thread that fails aborts the barrier,
 * so that the other one never waits for it forever.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Barrier, allocateBarrier } from '../src/core/comm/barrier.js';
import { spread } from './against-stats.js';
import { machine } from './against-tree.js';

const M = 128, K = 128, N = 256;
const KERNELS = ['fused-fma.wasm', 'fused.wasm'].map((f) => new URL(`../src/core/model/kernels/${f}`, import.meta.url));

/** `barrier`: the two threads begin timing together (free, lockstep); `every`: they also meet after every piece */
interface Job { barrier?: SharedArrayBuffer; every: boolean; rank: number; pieces: number; reps: number }
interface Done { ms: number; kernels: string }

/** fused-fma.wasm where this V8 runs relaxed SIMD, else fused.wasm; optimized at once (fused-wasm.ts does the same) */
function kernels(memory: WebAssembly.Memory): { gemm: (...a: number[]) => void; file: string } {
  setFlagsFromString('--experimental-wasm-relaxed-simd');
  setFlagsFromString('--no-wasm-dynamic-tiering');
  for (const url of KERNELS) {
    const bytes = readFileSync(url);
    if (!WebAssembly.validate(bytes)) continue;
    const k = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
    return { gemm: k.gemm as (...a: number[]) => void, file: url.pathname.split('/').pop()! };
  }
  throw new Error('no fused kernels build runs here (WebAssembly SIMD)');
}

/** A thread's work: `pieces` pieces of `reps` gemm calls, meeting the other thread after each when `every`. */
function work(job: Job): Done {
  const memory = new WebAssembly.Memory({ initial: 256 }); // 16 MB: the operands from 1 MB on
  const { gemm: call, file } = kernels(memory);
  const f32 = new Float32Array(memory.buffer);
  const a = 1 << 20; // A [M, K]
  const b = a + M * K * 4; // B [K, N]
  const c = b + K * N * 4; // C [M, N]
  const s = c + M * N * 4; // scratch: min(K, 256)·N floats (gemm.c)
  f32.fill(0, a >> 2, (s >> 2) + K * N);
  for (let i = 0; i < M * K; i++) f32[(a >> 2) + i] = Math.sin(i);
  for (let i = 0; i < K * N; i++) f32[(b >> 2) + i] = Math.cos(i);
  const gemm = () => call(a, K, 1, b, c, M, K, N, 0, 0, s);
  for (let i = 0; i < 20; i++) gemm(); // warm
  const barrier = job.barrier ? new Barrier(job.barrier, job.rank) : undefined;
  barrier?.wait(); // both threads start together
  const t0 = performance.now();
  for (let p = 0; p < job.pieces; p++) {
    for (let r = 0; r < job.reps; r++) gemm();
    if (job.every) barrier!.wait();
  }
  return { ms: performance.now() - t0, kernels: file };
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
  // a thread does not inherit tsx (Node 20): it registers it (resolved from here, whatever the directory), then
  // loads this file
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const self = JSON.stringify(import.meta.url);
  const entry = `import(${tsx}).then(({ register }) => { register(); return import(${self}); })`;
  const run = (jobs: Job[]) => {
    const workers = jobs.map((job) => new Worker(entry, { eval: true, workerData: job }));
    // a thread that fails or ends without answering: the barrier is aborted (the other one stops waiting)
    const abort = () => jobs.forEach((j) => j.barrier && new Barrier(j.barrier).abort());
    return Promise.all(workers.map((w) => new Promise<Done>((resolve, reject) => {
      let answered = false;
      w.once('message', (m: Done) => { answered = true; resolve(m); void w.terminate(); });
      w.once('error', (e) => { abort(); reject(e); });
      w.once('exit', (code) => {
        if (!answered) { abort(); reject(new Error(`a thread exited with code ${code} without answering`)); }
      });
    })));
  };
  // one gemm call's time, to size the pieces
  const [probe] = await run([{ rank: 0, every: false, pieces: 50, reps: 1 }]);
  const callMs = probe!.ms / 50;
  const fmt = (xs: number[], digits = 3) => {
    const s = spread(xs);
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  console.log(`${machine()}; node ${process.version}`);
  console.log(`one gemm 128x128·128x256 (${probe!.kernels}): ${callMs.toFixed(3)} ms alone; `
    + `runs of about ${runMs} ms, `
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
      const two = (every: boolean) => {
        const barrier = allocateBarrier(2);
        return run([0, 1].map((rank) => ({ barrier, every, rank, pieces, reps })));
      };
      per.alone.push(slowest(await run([{ rank: 0, every: false, pieces, reps }])));
      per.free.push(slowest(await two(false)));
      per.lockstep.push(slowest(await two(true)));
    }
    const ratio = (x: number[], y: number[], f = 1) => fmt(x.map((v, i) => (f * v) / y[i]!), 2);
    console.log(`| ${length} ms | ${reps} | ${fmt(per.alone)} | ${fmt(per.free)} | ${fmt(per.lockstep)} | `
      + `${ratio(per.free, per.alone)} | ${ratio(per.lockstep, per.free)} | ${ratio(per.alone, per.lockstep, 2)} |`);
  }
}
