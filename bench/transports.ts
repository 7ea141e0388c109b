/**
 * Tokens/s of configs/tiny-shakespeare.yaml with transport local and with threads for D = 1, 2, 4,
 * in one run, with the ratios to local, and the experts' compute rate on the devices.
 *   npx tsx bench/transports.ts [--steps N] [--microbatches M] [--set key=value ...]
 * With --microbatches M, the threads rows run min(M, D) micro-batches (the pipelined schedule).
 * Each configuration trains N steps (default 12); the first 2 are warm-up and not counted.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train } from '../src/train/trainer.js';
import { arg, benchConfig } from './common.js';

const steps = arg('steps', 12);
const micro = arg('microbatches', 1);
const sets = process.argv.flatMap((a, i) => (a === '--set' ? [process.argv[i + 1]!] : []));
interface Row { name: string; msPerStep: number; tokensPerS: number; expertGflops: number; waitMs: number }
const rows: Row[] = [];
for (const [transport, devices] of [['local', 2], ['threads', 1], ['threads', 2], ['threads', 4]] as const) {
  const m = transport === 'threads' ? Math.min(micro, devices) : 1;
  const config = benchConfig(steps, `parallel.transport=${transport}`, `parallel.devices=${devices}`, `parallel.microbatches=${m}`, 'train.log_every=1', ...sets);
  const dir = mkdtempSync(join(tmpdir(), 'switch-sim-bench-'));
  const times: number[] = [];
  let last = performance.now();
  await train({ config, name: 'bench', outDir: dir, onStep: () => { const now = performance.now(); times.push(now - last); last = now; } });
  const recs = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.layers).slice(2);
  // expert FLOPs: 3 matmul passes (forward, and backward's two) of 2·d·d_ff·2 per kept token
  const { d_model: d, d_ff } = config.model;
  let flops = 0;
  let computeMs = 0;
  let waitMs = 0;
  for (const r of recs) for (const l of r.layers) {
    flops += l.tokens_per_expert.reduce((a: number, b: number) => a + b, 0) * 2 * d * d_ff * 2 * 3;
    computeMs += l.device_compute_ms.reduce((a: number, b: number) => a + b, 0);
    waitMs += l.wait_ms;
  }
  const counted = times.slice(2);
  const ms = counted.reduce((a, b) => a + b, 0) / counted.length;
  rows.push({ name: `${transport} D=${devices}${m > 1 ? ` M=${m}` : ''}`, msPerStep: ms, tokensPerS: (config.data.batch_size * config.data.seq_len) / (ms / 1000), expertGflops: flops / computeMs / 1e6, waitMs: waitMs / recs.length });
}
const base = rows[0]!.tokensPerS;
console.log('transport       ms/step  tokens/s  vs local  expert GFLOP/s (per device thread)  wait on devices ms/step');
for (const r of rows) {
  console.log(`${r.name.padEnd(14)} ${r.msPerStep.toFixed(0).padStart(8)} ${r.tokensPerS.toFixed(0).padStart(9)} ${(r.tokensPerS / base).toFixed(2).padStart(8)}x ${r.expertGflops.toFixed(1).padStart(14)} ${r.waitMs.toFixed(0).padStart(24)}`);
}
