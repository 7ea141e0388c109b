/**
 * The two layouts on configs/tiny-shakespeare.yaml (or --config FILE), in one run: in-process
 * (transport local), the coordinator layout with device threads, and spmd, at D = 1, 2, 4; tokens/s,
 * the ratio to in-process, and for spmd where the time goes: barrier waits (time lost to the slowest
 * device, at the Switch layers' exchanges and in the optimizer step) and the dense all-reduce.
 *   npx tsx bench/layouts.ts [--data PATH] [--config FILE] [--steps N] [--rounds R]
 * Each configuration trains N steps (default 12; the first 2 are warm-up, not counted), R times
 * (default 3), taking turns; each figure is the median over the rounds.
 */
import { arg, benchConfig, timedTrain } from './common.js';

const steps = arg('steps', 12);
const rounds = arg('rounds', 3);
const setups = [
  { name: 'local D=2', sets: ['parallel.transport=local', 'parallel.devices=2'] },
  ...[1, 2, 4].map((D) => ({ name: `coordinator D=${D}`, sets: ['parallel.transport=threads', `parallel.devices=${D}`] })),
  ...[1, 2, 4].map((D) => ({ name: `spmd D=${D}`, sets: ['parallel.layout=spmd', 'parallel.transport=threads', `parallel.devices=${D}`] })),
];

interface Measure { msPerStep: number; barrierMs: number; allreduceMs: number; allreduceWaitMs: number }

async function measure(sets: string[]): Promise<Measure> {
  const config = benchConfig(steps, ...sets, 'train.log_every=1');
  const { msPerStep, records } = await timedTrain(config);
  const recs = records as unknown as { layers: { wait_ms: number }[]; allreduce_ms?: number; allreduce_wait_ms?: number }[];
  const mean = (f: (r: (typeof recs)[number]) => number) => recs.reduce((a, r) => a + f(r), 0) / recs.length;
  const spmd = sets.includes('parallel.layout=spmd');
  return {
    msPerStep,
    // spmd: a device's waits at the exchanges' barriers plus the all-reduce's (mean over devices); norm_wait_ms is
    // that same barrier (reduce.ts), already in allreduce_wait_ms, so not added again
    barrierMs: spmd ? mean((r) => r.layers.reduce((a, l) => a + l.wait_ms, 0) + (r.allreduce_wait_ms ?? 0)) : NaN,
    allreduceMs: spmd ? mean((r) => r.allreduce_ms ?? 0) : NaN,
    allreduceWaitMs: spmd ? mean((r) => r.allreduce_wait_ms ?? 0) : NaN,
  };
}

const results: Measure[][] = setups.map(() => []);
for (let r = 0; r < rounds; r++) for (const [i, s] of setups.entries()) results[i]!.push(await measure(s.sets));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const tokens = benchConfig(steps).data.batch_size * benchConfig(steps).data.seq_len;
const rows = setups.map((s, i) => {
  const m = (f: (x: Measure) => number) => median(results[i]!.map(f));
  return { name: s.name, ms: m((x) => x.msPerStep), barrier: m((x) => x.barrierMs), allreduce: m((x) => x.allreduceMs), arWait: m((x) => x.allreduceWaitMs), spread: results[i]!.map((x) => x.msPerStep.toFixed(0)).join('/') };
});
const f = (x: number, digits = 0) => (Number.isNaN(x) ? '-' : x.toFixed(digits));
console.log(`median of ${rounds} rounds of ${steps} steps (${tokens} tokens/step)`);
console.log('layout            ms/step  tokens/s  vs local  barrier wait ms/step (share)  all-reduce ms (of it waiting)  rounds ms/step');
for (const r of rows) {
  const share = Number.isNaN(r.barrier) ? '-' : `${f(r.barrier, 1)} (${((100 * r.barrier) / r.ms).toFixed(1)}%)`;
  const ar = Number.isNaN(r.allreduce) ? '-' : `${f(r.allreduce, 1)} (${f(r.arWait, 1)})`;
  console.log(`${r.name.padEnd(16)} ${f(r.ms).padStart(8)} ${f(tokens / (r.ms / 1000)).padStart(9)} ${(rows[0]!.ms / r.ms).toFixed(2).padStart(8)}x ${share.padStart(29)} ${ar.padStart(30)}  ${r.spread}`);
}
