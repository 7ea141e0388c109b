/**
 * Memory over a long run: trains configs/quickstart.yaml (what `npm start` runs, on the embedded
 * corpus) and prints, every N steps, the process's RSS (coordinator and device threads together),
 * the V8 heap, the wasm heap of the coordinator's tfjs backend, and tfjs's live tensor count.
 *   npx tsx bench/soak.ts [--steps 10000] [--every 1000] [--eval-every 0] [--checkpoint-every 0] [--set key=value ...]
 * The last line compares RSS at the first report with RSS at the end (the target: flat within 5%).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tf from '../src/core/util/tfjs.cjs';
import { resolveConfig } from '../src/core/config/load.js';
import { train } from '../src/training/trainer.js';
import { arg } from './common.js';

const steps = arg('steps', 10_000);
const every = arg('every', 1000);
const sets = process.argv.flatMap((a, i) => (a === '--set' ? [process.argv[i + 1]!] : []));
const config = resolveConfig({
  file: new URL('../configs/quickstart.yaml', import.meta.url).pathname,
  sets: [`train.steps=${steps}`, `train.eval_every=${arg('eval-every', 0)}`, `train.checkpoint_every=${arg('checkpoint-every', 0)}`,
    `train.log_every=${every}`, ...sets],
}).config;
const dir = mkdtempSync(join(tmpdir(), 'switch-sim-soak-'));
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
const wasmHeap = () => (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length ?? 0;
const rows: { step: number; rss: number }[] = [];
console.log(`soak: configs/quickstart.yaml, ${steps} steps, transport ${config.parallel.transport}, devices ${config.parallel.devices}, ` +
  `eval every ${config.train.eval_every}, checkpoint every ${config.train.checkpoint_every}`);
console.log('step    rss_MB  heap_used_MB  external_MB  array_buffers_MB  wasm_heap_MB  tensors');
const t0 = performance.now();
await train({
  config, name: 'soak', outDir: dir,
  onStep: (s) => {
    if (s.step % every !== 0 && s.step !== 1) return;
    const m = process.memoryUsage();
    rows.push({ step: s.step, rss: m.rss });
    console.log(`${String(s.step).padEnd(6)}  ${mb(m.rss).padStart(6)}  ${mb(m.heapUsed).padStart(12)}  ${mb(m.external).padStart(11)}  ` +
      `${mb(m.arrayBuffers).padStart(16)}  ${mb(wasmHeap()).padStart(12)}  ${String(tf.memory().numTensors).padStart(7)}`);
  },
});
rmSync(dir, { recursive: true, force: true });
const first = rows.find((r) => r.step >= every) ?? rows[0]!;
const last = rows.at(-1)!;
console.log(`RSS step ${first.step} → ${last.step}: ${mb(first.rss)} → ${mb(last.rss)} MB (${(((last.rss - first.rss) / first.rss) * 100).toFixed(1)}%), ` +
  `${((performance.now() - t0) / 1000).toFixed(0)} s`);
