/**
 * Tokens/s of configs/tiny-shakespeare.yaml with transport local and with threads for D = 1, 2, 4,
 * in one run, with the ratios to local, and the experts' compute rate on the devices.
 *   npx tsx bench/transports.ts [--data PATH] [--config FILE] [--steps N] [--rounds R] [--microbatches M] [--set key=value ...]
 * Each configuration trains N steps (default 12; the first 2 are warm-up and not counted), R times
 * (default 3), the configurations taking turns so that a slow spell of the machine hits them alike;
 * each figure is the median over the rounds. With --microbatches M, the threads rows run min(M, D)
 * micro-batches (the pipelined schedule).
 */
import { arg, benchConfig, timedTrain } from './common.js';

const steps = arg('steps', 12);
const rounds = arg('rounds', 3);
const micro = arg('microbatches', 1);
const sets = process.argv.flatMap((a, i) => (a === '--set' ? [process.argv[i + 1]!] : []));
const setups = ([['local', 2], ['threads', 1], ['threads', 2], ['threads', 4]] as const).map(([transport, devices]) => {
  const m = transport === 'threads' ? Math.min(micro, devices) : 1;
  return { name: `${transport} D=${devices}${m > 1 ? ` M=${m}` : ''}`, sets: [`parallel.transport=${transport}`, `parallel.devices=${devices}`, `parallel.microbatches=${m}`] };
});

interface Measure { msPerStep: number; expertGflops: number; waitMs: number }

async function measure(extra: string[]): Promise<Measure> {
  const config = benchConfig(steps, ...extra, 'train.log_every=1', ...sets);
  const { msPerStep, records: recs } = await timedTrain(config);
  // expert FLOPs: 3 matmul passes (forward, and backward's two) of 2·d·d_ff·2 per kept token
  const { d_model: d, d_ff } = config.model;
  let flops = 0, computeMs = 0, waitMs = 0;
  for (const r of recs) for (const l of r.layers) {
    flops += l.tokens_per_expert.reduce((a: number, b: number) => a + b, 0) * 2 * d * d_ff * 2 * 3;
    computeMs += l.device_compute_ms.reduce((a: number, b: number) => a + b, 0);
    waitMs += l.wait_ms;
  }
  return { msPerStep, expertGflops: flops / computeMs / 1e6, waitMs: waitMs / recs.length };
}

const results: Measure[][] = setups.map(() => []);
for (let r = 0; r < rounds; r++) for (const [i, s] of setups.entries()) results[i]!.push(await measure(s.sets));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const tokens = benchConfig(steps).data.batch_size * benchConfig(steps).data.seq_len;
const rows = setups.map((s, i) => ({
  name: s.name,
  ms: median(results[i]!.map((m) => m.msPerStep)),
  gflops: median(results[i]!.map((m) => m.expertGflops)),
  wait: median(results[i]!.map((m) => m.waitMs)),
  spread: results[i]!.map((m) => m.msPerStep.toFixed(0)).join('/'),
}));
console.log(`median of ${rounds} rounds of ${steps} steps`);
console.log('transport       ms/step  tokens/s  vs local  expert GFLOP/s (per device thread)  wait on devices ms/step  rounds ms/step');
for (const r of rows) {
  console.log(`${r.name.padEnd(14)} ${r.ms.toFixed(0).padStart(8)} ${(tokens / (r.ms / 1000)).toFixed(0).padStart(9)} ${(rows[0]!.ms / r.ms).toFixed(2).padStart(8)}x ${r.gflops.toFixed(1).padStart(14)} ${r.wait.toFixed(0).padStart(24)}  ${r.spread}`);
}
