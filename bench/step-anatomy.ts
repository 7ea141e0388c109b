/**
 * Where one training step's time goes, in-process (parallel.transport=local: every kernel runs on this
 * thread): tfjs kernels by kind (calls and ms per step), the coordinator's named phases outside tfjs kernels
 * (attention's WebAssembly kernel, router, dispatch, optimizer; in the backward, the tape walk and the hand-written
 * JavaScript and WebAssembly operations: 2-D transposes, column sums, attention's backward), tensors allocated,
 * garbage collection, and the step's achieved model GFLOP/s beside this machine's matmul peak, measured in
 * the same run on the same backend.
 *   npx tsx bench/step-anatomy.ts [--config FILE] [--data PATH] [--steps N] [--set key=value ...]
 * (`--set parallel.kernels=tfjs` measures the tfjs reference path, `fused` the default.)
 * The first 2 steps are warm-up and not counted. Kernel times are wall times around each top-level kernel
 * call (the WebAssembly backend runs kernels synchronously), so they include tfjs's per-call overhead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import tf from '../src/core/util/tfjs.cjs';
import { Recorder, setProfile } from '../src/core/instrument/recorder.js';
import { modelFlopsPerStep } from '../src/sim/model-flops.js';
import { train } from '../src/training/trainer.js';
import { arg, benchConfig, configFile } from './common.js';

const KIND: [RegExp, string][] = [
  [/^custom$/, 'custom ops (tf.customGrad: the fused kernels, attention)'],
  [/MatMul|Conv/, 'matmul'],
  [/^(Sum|Max|Min|Mean|Prod|ArgMax|ArgMin|All|Any|Softmax|LogSoftmax|Cumsum|TopK)$/, 'reduction'],
  [new RegExp('^(Reshape|Transpose|Concat|Slice|StridedSlice|Gather|GatherV2|GatherNd|Pack|Unpack|Tile|PadV2|SplitV|'
    + 'Identity|Cast|Fill|ZerosLike|OnesLike|ScatterNd|OneHot|Reverse)$'), 'layout'],
];
const kindOf = (kernel: string) => KIND.find(([re]) => re.test(kernel))?.[1] ?? 'elementwise';

// the recorder's phases, grouped by what they do
const PHASE: Record<string, string> = {
  attention: 'attention',
  router_logits: 'router', router_softmax: 'router', routing_plan: 'router', aux_losses: 'router',
  combine: 'dispatch', combine_inputs: 'dispatch', combine_grads_in: 'dispatch', expert_grads_out: 'dispatch',
  release_inputs: 'dispatch', refresh_weights: 'dispatch', wait: 'dispatch',
  optimizer: 'optimizer', grad_norm: 'optimizer', grad_accumulate: 'optimizer', stage_backward: 'backward',
};
const phaseOf = (span: string) => PHASE[span] ?? 'other';

interface Tally { calls: number; ms: number }
const add = (m: Map<string, Tally>, k: string, ms: number) => {
  const t = m.get(k) ?? { calls: 0, ms: 0 };
  t.calls++;
  t.ms += ms;
  m.set(k, t);
};

const steps = arg('steps', 12);
const skip = 2;
const sets = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--set' ? [a] : []));
const config = benchConfig(steps, 'parallel.transport=local', 'parallel.devices=1', ...sets);

// every top-level kernel call, timed and attributed to its kind and to the innermost open phase
const kernels = new Map<string, Tally>();
const outside = new Map<string, Tally>(); // phase time less the kernels inside it
const stack: { name: string; t0: number; kernelMs: number; childMs: number }[] = [];
let counting = false;
let depth = 0;
const engine = tf.engine() as unknown as { runKernelFunc: (p: { kernelName?: string }) => unknown };
/** tfjs numbers every tensor it makes from one counter (Engine.nextTensorId) */
const tensorId = () => (engine.constructor as unknown as { nextTensorId: number }).nextTensorId;
const run = engine.runKernelFunc.bind(engine);
engine.runKernelFunc = (p) => {
  if (depth > 0 || !counting) return run(p);
  depth++;
  const t0 = performance.now();
  try {
    return run(p);
  } finally {
    const ms = performance.now() - t0;
    depth--;
    add(kernels, kindOf(p.kernelName ?? 'custom'), ms); // a tf.customGrad op runs without a kernel name
    if (stack.length > 0) stack.at(-1)!.kernelMs += ms;
  }
};
const begin = Recorder.prototype.begin;
const end = Recorder.prototype.end;
Recorder.prototype.begin = function (this: Recorder, name: string, ...rest: [string?, number?]) {
  stack.push({ name, t0: performance.now(), kernelMs: 0, childMs: 0 });
  begin.call(this, name, ...rest);
};
Recorder.prototype.end = function (this: Recorder) {
  end.call(this);
  const o = stack.pop()!;
  const ms = performance.now() - o.t0;
  if (stack.length > 0) stack.at(-1)!.childMs += ms;
  if (counting && o.name !== 'step') add(outside, phaseOf(o.name), ms - o.kernelMs - o.childMs);
};

let gcMs = 0;
new PerformanceObserver((list) => {
  if (counting) for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

let vocab = 0;
let tensorsAt = 0;
let tensorsPerStep = 0;
let stepsCounted = 0;
let stepMs = 0;
let last = 0;
const recorder = new Recorder();
setProfile(recorder);
const dir = mkdtempSync(join(tmpdir(), 'switch-sim-anatomy-'));
await train({
  config,
  name: 'anatomy',
  outDir: dir,
  log: (line) => { vocab = Number(/vocab (\d+)/.exec(line)?.[1] ?? vocab); },
  onStep: (s) => {
    const now = performance.now();
    if (s.step > skip) {
      stepMs += now - last;
      stepsCounted++;
    }
    if (s.step === skip) {
      counting = true;
      tensorsAt = tensorId();
    }
    if (s.step === steps) {
      counting = false; // what follows the last step (the final evaluation) is not a step's
      tensorsPerStep = (tensorId() - tensorsAt) / stepsCounted;
    }
    last = now;
  },
}).finally(() => rmSync(dir, { recursive: true, force: true }));
setProfile(null);

// tfjs's matmul on this backend and thread, the reference peak: square products, best of sizes
let peak = 0;
for (const n of [128, 256, 512]) {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  tf.matMul(a, b).dispose();
  const reps = Math.max(3, Math.round(2e8 / (2 * n ** 3)));
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) tf.matMul(a, b).dataSync();
  peak = Math.max(peak, (2 * n ** 3 * reps) / ((performance.now() - t0) / 1000) / 1e9);
  tf.dispose([a, b]);
}

const perStep = stepMs / stepsCounted;
const flops = modelFlopsPerStep(config, config.data.batch_size, vocab);
const rows: [string, number, number][] = [];
for (const [k, t] of kernels) rows.push([`kernels: ${k}`, t.calls / stepsCounted, t.ms / stepsCounted]);
for (const [k, t] of outside) rows.push([`outside kernels: ${k}`, t.calls / stepsCounted, t.ms / stepsCounted]);
const accounted = rows.reduce((a, r) => a + r[2], 0);
rows.sort((x, y) => y[2] - x[2]);
rows.push(['the rest (training loop, batches, logging)', 0, perStep - accounted]);
const what = `${basename(configFile(), '.yaml')} in-process, parallel.kernels ${config.parallel.kernels}`;
console.log(`${what}, ${stepsCounted} steps after ${skip} of warm-up: ${perStep.toFixed(1)} ms/step`);
console.log('| part | calls/step | ms/step | % of step |');
console.log('|---|---:|---:|---:|');
const share = (ms: number) => ((100 * ms) / perStep).toFixed(1);
for (const [name, calls, ms] of rows) console.log(`| ${name} | ${calls ? calls.toFixed(0) : ''} | ${ms.toFixed(2)} | ${share(ms)} |`);
const gc = gcMs / stepsCounted;
console.log(`| of all the above: garbage collection | | ${gc.toFixed(2)} | ${share(gc)} |`);
console.log(`tensors allocated per step: ${tensorsPerStep.toFixed(0)}`);
const achieved = flops / perStep / 1e6;
console.log(`model FLOPs per step (Megatron-LM's count): ${(flops / 1e9).toFixed(3)} G; achieved ${achieved.toFixed(2)} GFLOP/s; `
  + `tfjs's ${tf.getBackend()} matMul on this thread ${peak.toFixed(1)} GFLOP/s (${((100 * achieved) / peak).toFixed(1)}% of it; `
  + 'the fused kernels\' own gemm can beat it)');
