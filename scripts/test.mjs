#!/usr/bin/env node
// The test suite: ava over test/*.test.ts in two passes, then the ten slowest tests.
//  1. every file whose assertions do not depend on timing, two files at a time (most of their time is
//     starting processes and threads, waiting on sockets and timeouts, not computing);
//  2. the files that measure time (profile: phase shares and a known delay), one at a time, alone.
// Arguments go to both passes (e.g. --match); `node scripts/test.mjs test/x.test.ts` runs those files only.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';

const TIMED = ['test/profile.test.ts'];
const AVA = new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url).pathname;
const args = process.argv.slice(2);
const named = args.filter((a) => a.endsWith('.test.ts'));
const flags = args.filter((a) => !a.endsWith('.test.ts'));
const all = named.length > 0 ? named : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`);
const passes = [
  { files: all.filter((f) => !TIMED.includes(f)), concurrency: 2 },
  { files: all.filter((f) => TIMED.includes(f)), concurrency: 1 },
].filter((p) => p.files.length > 0);

/** "1m 5.2s", "3.1s", "250ms" → ms */
const ms = (text) => {
  let t = 0;
  for (const [, n, u] of text.matchAll(/([\d.]+)(ms|m|s)\b/g)) t += Number(n) * (u === 'ms' ? 1 : u === 's' ? 1000 : 60_000);
  return t;
};

const durations = [];
let code = 0;
const started = performance.now();
for (const pass of passes) {
  const child = spawn(process.execPath, [AVA, '--concurrency', String(pass.concurrency), ...flags, ...pass.files], { stdio: ['inherit', 'pipe', 'inherit'], env: process.env });
  let partial = '';
  child.stdout.on('data', (d) => {
    process.stdout.write(d);
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      const m = /^\s*[✔✘] (?:\[\w+\]: )?(.*?) \(((?:[\d.]+(?:ms|m|s) ?)+)\)\s*$/.exec(line);
      if (m) durations.push({ title: m[1], ms: ms(m[2]) });
    }
  });
  const exit = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  if (exit !== 0) code = exit;
}
const slowest = durations.sort((a, b) => b.ms - a.ms).slice(0, 10);
console.log(`\nslowest ${slowest.length} tests (wall time of each, files running two at a time in the first pass):`);
for (const d of slowest) console.log(`  ${(d.ms / 1000).toFixed(1).padStart(6)} s  ${d.title}`);
console.log(`whole suite: ${((performance.now() - started) / 1000).toFixed(0)} s`);
process.exitCode = code;
