/**
 * The fused kernels' matrix products (kernels/gemm.c: gemm, gemm_nt, col_sum; attention's tiles), an older build
 * against the current one, side by side in one process: every case on the same random inputs in both, their outputs
 * compared bit for bit, then timed interleaved (old, new, old, new, …) so that other load falls on both alike, in
 * CPU time of this process (ms per call), which time slices lost to other processes leave out.
 * Both builds of each: fused.wasm (multiply and add) and fused-fma.wasm (relaxed SIMD), where this V8 has it.
 *   npx tsx bench/gemm.ts --old DIR [--new DIR] [--rounds R] [--ms MS] [--only TEXT]
 * --only: the cases whose names contain TEXT. Ratios over 1: the new build is faster. DIR holds a fused.wasm and a
 * fused-fma.wasm (--new: default the committed ones in src/core/model/kernels).
 * Shapes: tiny-shakespeare's (2048 tokens of d 128, qkv 384, experts' 640 rows of F 256, vocabulary 65).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';

const flag = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
if (process.argv.includes('--help') || !process.argv.includes('--old')) {
  console.log('npx tsx bench/gemm.ts --old DIR [--new DIR] [--rounds R] [--ms MS]   (DIR: fused.wasm, fused-fma.wasm)');
  process.exit(process.argv.includes('--help') ? 0 : 1);
}
const oldDir = flag('old', '');
const newDir = flag('new', new URL('../src/core/model/kernels', import.meta.url).pathname);
const rounds = Number(flag('rounds', '5'));
const budgetMs = Number(flag('ms', '150'));
setFlagsFromString('--experimental-wasm-relaxed-simd');
setFlagsFromString('--no-wasm-dynamic-tiering');

type Fn = (...args: number[]) => number | void;
interface Build { k: Record<string, Fn>; f32: Float32Array; u32: Uint32Array }

const HEAP = 96 << 20;
function load(file: string): Build | null {
  const bytes = readFileSync(file);
  if (!WebAssembly.validate(bytes)) return null;
  const memory = new WebAssembly.Memory({ initial: HEAP >> 16 });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const k = instance.exports as unknown as Record<string, Fn>;
  return { k, f32: new Float32Array(memory.buffer), u32: new Uint32Array(memory.buffer) };
}

/** A case: its operands (float counts, filled with the same random numbers in both builds), its call, its output. */
interface Case { name: string; sizes: number[]; out: number; flops: number; call(k: Record<string, Fn>, p: number[]): void }
const gemm = (name: string, M: number, R: number, N: number, layout: 'nn' | 'tn' | 'nt', bias: boolean, acc: number): Case => {
  const flops = 2 * M * R * N;
  if (layout === 'nt') { // C[M,N] = G[M,R]·W[N,R]ᵀ
    return { name, sizes: [M * R, N * R, M * N, 2 * N * R], out: 2, flops, call: (k, [g, w, c, s]) => k.gemm_nt!(g!, w!, c!, M, R, N, s!, acc) };
  }
  const [sa, sr] = layout === 'nn' ? [R, 1] : [1, M]; // tn: A stored [R, M], read down its columns
  return {
    name, sizes: [M * R, R * N, M * N, N, Math.min(R, 256) * N], out: 2, flops,
    call: (k, [a, b, c, bi, s]) => k.gemm!(a!, sa, sr, b!, c!, M, R, N, bias ? bi! : 0, acc, s!), // older builds: no scratch
  };
};
const colSum = (name: string, M: number, N: number, acc: number): Case =>
  ({ name, sizes: [M * N, N], out: 1, flops: M * N, call: (k, [g, o]) => k.col_sum!(g!, o!, M, N, acc) });
const attn = (name: string, B: number, T: number, H: number, hd: number, backward: boolean): Case => {
  const D = H * hd, scratch = 4 * T * hd + T * T + T + 8 * T * hd + 2 * T * T;
  const flops = B * H * T * T * hd * (backward ? 4 : 2);
  return backward
    ? { name, sizes: [B * T * 3 * D, B * T * D, B * H * T, B * T * D, B * T * 3 * D, scratch], out: 4, flops,
      call: (k, [q, o, l, d, dq, s]) => k.attn_bwd!(q!, o!, l!, d!, dq!, B, T, H, hd, s!) }
    : { name, sizes: [B * T * 3 * D, B * T * D, B * H * T, scratch], out: 1, flops,
      call: (k, [q, o, l, s]) => k.attn_fwd!(q!, o!, l!, B, T, H, hd, s!) };
};
const only = flag('only', '');
const allCases: Case[] = [
  gemm('fwd qkv  2048x128·128x384', 2048, 128, 384, 'nn', true, 0),
  gemm('fwd ffn1  640x128·128x256', 640, 128, 256, 'nn', true, 0),
  gemm('fwd ffn2  640x256·256x128', 640, 256, 128, 'nn', true, 0),
  gemm('fwd lm   2048x128·128x65', 2048, 128, 65, 'nn', false, 0),
  gemm('dW qkv   (2048x128)ᵀ·2048x384', 128, 2048, 384, 'tn', false, 0),
  gemm('dW ffn1  (640x128)ᵀ·640x256', 128, 640, 256, 'tn', false, 0),
  gemm('dW ffn2  (640x256)ᵀ·640x128', 256, 640, 128, 'tn', false, 1),
  gemm('dW lm    (2048x128)ᵀ·2048x65', 128, 2048, 65, 'tn', false, 0),
  gemm('dX qkv   2048x384·(128x384)ᵀ', 2048, 384, 128, 'nt', false, 0),
  gemm('dX ffn2  640x128·(256x128)ᵀ', 640, 128, 256, 'nt', false, 0),
  gemm('dX ffn1  640x256·(128x256)ᵀ', 640, 256, 128, 'nt', false, 1),
  gemm('dX lm    2048x65·(128x65)ᵀ', 2048, 65, 128, 'nt', false, 0),
  gemm('odd      37x300·300x29 +C', 37, 300, 29, 'nn', true, 1),
  gemm('odd tn   (523x13)ᵀ·523x21', 13, 523, 21, 'tn', false, 0),
  gemm('odd nt   11x517·(19x517)ᵀ', 11, 517, 19, 'nt', false, 1),
  colSum('colsum   2048x384', 2048, 384, 0),
  colSum('colsum   640x258 +', 640, 258, 1),
  attn('attn fwd B32 T64 H4 hd32', 32, 64, 4, 32, false),
  attn('attn bwd B32 T64 H4 hd32', 32, 64, 4, 32, true),
];
const cases = allCases.filter((c) => c.name.includes(only));

/** Operands at 16-byte-aligned offsets, the same seeded random values in both builds. */
function place(builds: Build[], c: Case): number[] {
  let at = 1024, seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const ptrs = c.sizes.map((n) => {
    const p = at;
    at += Math.ceil((n * 4) / 64) * 64;
    for (let i = 0; i < n; i++) {
      const v = rand();
      for (const b of builds) b.f32[(p >> 2) + i] = v;
    }
    return p;
  });
  if (at > HEAP) throw new Error(`${c.name}: operands over the heap`);
  return ptrs;
}

/** This process's CPU time (user + system, ms): steadier than wall time on a machine that other work keeps busy. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
let mismatches = 0;
for (const variant of ['fused.wasm', 'fused-fma.wasm']) {
  const [before, after] = [load(join(oldDir, variant)), load(join(newDir, variant))];
  if (!before || !after) {
    console.log(`${variant}: not loadable here, skipped`);
    continue;
  }
  console.log(`\n${variant}: old ${oldDir}, new ${newDir}; CPU ms per call, ${rounds} interleaved rounds`);
  console.log('| case | old ms (median, best) | new ms (median, best) | old/new (median, best) | new GFLOP/s (best) | bitwise |');
  console.log('|---|---:|---:|---:|---:|---|');
  const ratios: number[] = [];
  for (const c of cases) {
    const p = place([before, after], c);
    const outAt = p[c.out]! >> 2, n = c.sizes[c.out]!;
    // a second call, once: acc cases then add onto the first call's result (both builds alike)
    for (const b of [before, after]) c.call(b.k, p);
    let same = true;
    for (let i = 0; i < n; i++) if (before.u32[outAt + i] !== after.u32[outAt + i]) { same = false; break; }
    if (!same) mismatches++;
    // repetitions per timing: about budgetMs / rounds each
    const t0 = performance.now();
    c.call(after.k, p);
    const reps = Math.max(1, Math.round(budgetMs / rounds / Math.max(0.01, performance.now() - t0)));
    const times: [number[], number[]] = [[], []];
    for (let r = 0; r < rounds; r++) {
      [before, after].forEach((b, i) => {
        const s = cpuMs();
        for (let j = 0; j < reps; j++) c.call(b.k, p);
        times[i]!.push((cpuMs() - s) / reps);
      });
    }
    const [mo, mn, bo, bn] = [median(times[0]), median(times[1]), Math.min(...times[0]), Math.min(...times[1])];
    ratios.push(bo / bn);
    console.log(`| ${c.name} | ${mo.toFixed(3)}, ${bo.toFixed(3)} | ${mn.toFixed(3)}, ${bn.toFixed(3)} `
      + `| ${(mo / mn).toFixed(2)}, ${(bo / bn).toFixed(2)} `
      + `| ${(c.flops / bn / 1e6).toFixed(1)} | ${same ? 'same' : 'DIFFERENT'} |`);
  }
  const geo = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
  console.log(`${variant}: geometric mean of the best times' old/new ${geo.toFixed(2)}`);
}
console.log(mismatches ? `\n${mismatches} case(s) with outputs that differ` : '\nall outputs bitwise identical');
process.exitCode = mismatches ? 1 : 0;
