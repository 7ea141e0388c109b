import test from 'ava';
import { resolveConfig } from '../src/core/config/load.js';
import { exchangeOverheadUs, validateCluster } from '../src/sim/cluster.js';
import { fitMachine, leastSquares, machineCluster, nonNegativeLeastSquares, type MachineConstants } from '../src/sim/fit.js';
import { computeUs } from '../src/sim/compute.js';
import { project } from '../src/sim/project.js';
import { uniformWorkload } from '../src/sim/workload.js';
import { assertCalibrated, calibrate, CalibrationError, calibrationTable, type CalibrationPlan } from '../src/apps/calibrate/calibrate.js';
import { exitCodeFor } from '../src/cli/main.js';
import { tempDir } from './helpers.js';

const close = (a: number, b: number, rel = 1e-6) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

/** A made-up machine with round numbers: what fitMachine must give back from the runs it would produce. */
const KNOWN: MachineConstants = {
  cores: 2, copy_gbps: 40, block_overhead_us: 3000, memory_gbps: 2, peak_gflops: 20,
  parallel_efficiency: [[2, 0.8], [4, 0.5]], exchange_overhead_us: [[2, 1500], [4, 4000]],
};

const config = (d: number, devices: number, batch: number) => resolveConfig({
  sets: [`model.d_model=${d}`, 'model.n_heads=4', `model.d_ff=${2 * d}`, 'model.n_layers=2', 'moe.n_experts=4', 'data.seq_len=64', `data.batch_size=${batch}`,
    `parallel.devices=${devices}`, 'parallel.layout=spmd', 'parallel.transport=threads'],
}).config;

test('least squares: exact on a consistent system; with coefficients ≥ 0, a negative one is held at 0 and the rest refitted', (t) => {
  // y = 2·a + 3·b exactly
  const rows = [[1, 0, 2], [0, 1, 3], [1, 1, 5], [2, 1, 7]];
  t.deepEqual(leastSquares(rows).map((v) => +v.toFixed(9)), [2, 3]);
  t.deepEqual(nonNegativeLeastSquares(rows).map((v) => +v.toFixed(9)), [2, 3]);
  // y = 1·a − 1·b: unconstrained gives b = −1; with b ≥ 0, b = 0 and a fits y over x_a alone: Σ x·y / Σ x² = (1·1 + 2·1) / (1 + 4) = 0.6
  const neg = [[1, 0, 1], [0, 1, -1], [2, 1, 1]];
  t.deepEqual(leastSquares(neg).map((v) => +v.toFixed(9)), [1, -1]);
  t.deepEqual(nonNegativeLeastSquares(neg).map((v) => +v.toFixed(9)), [0.6, 0]);
});

test('least squares on data no line fits, worked by hand: y = a + b·x through (0, 1), (1, 3), (2, 4) and a constrained pair', (t) => {
  // normal equations: [3 3; 3 5]·[a b] = [Σy Σxy] = [8 11] → b = (3·11 − 3·8) / (3·5 − 3·3) = 3/2, a = (8 − 3·3/2) / 3 = 7/6
  // (residuals −1/6, 1/3, −1/6: a fit that drops or misweights a row gives another line)
  const line = [[1, 0, 1], [1, 1, 3], [1, 2, 4]];
  t.deepEqual(leastSquares(line).map((v) => +v.toFixed(12)), [+(7 / 6).toFixed(12), 1.5]);
  t.deepEqual(nonNegativeLeastSquares(line).map((v) => +v.toFixed(12)), [+(7 / 6).toFixed(12), 1.5]);
  // rows (x₁, x₂, y) = (1, 0, 2), (0, 1, −1), (1, 1, 0): unconstrained [2 1; 1 2]·[a b] = [2 −1] → a = 5/3, b = −4/3;
  // with b ≥ 0, b = 0 and a = Σx₁y / Σx₁² = 2/2 = 1 (a alone at 0 would leave b = −1/2 < 0)
  const pair = [[1, 0, 2], [0, 1, -1], [1, 1, 0]];
  t.deepEqual(leastSquares(pair).map((v) => +v.toFixed(12)), [+(5 / 3).toFixed(12), +(-4 / 3).toFixed(12)]);
  t.deepEqual(nonNegativeLeastSquares(pair).map((v) => +v.toFixed(12)), [1, 0]);
});

test('this machine: compute is (fixed + FLOPs / peak + bytes / bandwidth) × (devices / cores) / parallel efficiency, and an exchange costs its fitted overhead', (t) => {
  // 2 GFLOP (one [1000, 1000]·[1000, 1000] GEMM) + 1 GB of memory traffic + 500 µs fixed
  const work = { kernels: [[{ m: 1000, k: 1000, n: 1000 }]], attentionFlops: 0, attentionKernels: 0, bytes: 1e9, fixedUs: 500 };
  const alone = 500 + (2e9 / 20e9) * 1e6 + (1e9 / 2e9) * 1e6; // 500 + 100,000 + 500,000 µs
  const cfg = config(64, 1, 4);
  t.true(close(computeUs(machineCluster(KNOWN, 1), cfg, work), alone));
  t.true(close(computeUs(machineCluster(KNOWN, 2), cfg, work), alone / 0.8)); // two threads on two cores, each at 80%
  t.true(close(computeUs(machineCluster(KNOWN, 4), cfg, work), (alone * 2) / 0.5)); // four on two cores take turns, at 50%
  t.is(exchangeOverheadUs(machineCluster(KNOWN, 1)), 0); // one device waits for nobody
  t.is(exchangeOverheadUs(machineCluster(KNOWN, 2)), 1500);
  t.is(exchangeOverheadUs(machineCluster(KNOWN, 4)), 4000);
  t.true(close(exchangeOverheadUs(machineCluster({ ...KNOWN, exchange_overhead_us: [[2, 1000], [8, 4000]] }, 4)), 2500)); // log-linear between points: 4 is halfway from 2 to 8
});

// A round trip of the fitting code, not a validation: the "measured" runs are made by the same model
// that is fitted, so it checks that fitMachine inverts project, and says nothing of this machine.
test('round trip of the fitting code: fitMachine gives back the machine whose model made the runs (block cost, bandwidth, FLOP rate, per device count efficiency and exchange cost)', (t) => {
  const runs = [
    ...[64, 128].flatMap((d) => [4, 16].map((B) => ({ d, D: 1, B }))),
    ...[64, 128].flatMap((d) => [2, 4].map((D) => ({ d, D, B: 16 }))),
  ].map(({ d, D, B }) => {
    const workload = uniformWorkload(config(d, D, B));
    return { devices: D, workload, measured_ms: project(machineCluster(KNOWN, D), workload).step_ms };
  });
  const fitted = fitMachine(runs, { cores: 2, copy_gbps: 40 });
  t.deepEqual(fitted.calibration, { layout: 'spmd', devices: [1, 2, 4] }, 'what simulate compares a run\'s layout with');
  t.deepEqual(machineCluster(fitted).calibration, fitted.calibration);
  t.true(close(fitted.block_overhead_us, 3000, 1e-4), `${fitted.block_overhead_us}`);
  t.true(close(fitted.memory_gbps, 2, 1e-4), `${fitted.memory_gbps}`);
  t.true(close(fitted.peak_gflops, 20, 1e-4), `${fitted.peak_gflops}`);
  for (const [i, [D, e]] of KNOWN.parallel_efficiency.entries()) {
    t.is(fitted.parallel_efficiency[i]![0], D);
    t.true(close(fitted.parallel_efficiency[i]![1], e, 1e-4), `efficiency ${fitted.parallel_efficiency[i]}`);
    t.true(close(fitted.exchange_overhead_us[i]![1], KNOWN.exchange_overhead_us[i]![1], 1e-4), `exchange ${fitted.exchange_overhead_us[i]}`);
  }
  // and it predicts a model size it never saw
  const held = uniformWorkload(config(96, 2, 16));
  t.true(close(project(machineCluster(fitted, 2), held).step_ms, project(machineCluster(KNOWN, 2), held).step_ms, 1e-4));
  t.throws(() => fitMachine(runs.filter((r) => r.devices > 1), { cores: 2, copy_gbps: 40 }), { message: /at least three one-device runs \(got 0\)/ });
  const first = runs[0]!.workload;
  const coordinator = { ...runs[0]!, workload: { ...first, config: { ...first.config, parallel: { ...first.config.parallel, layout: 'coordinator' as const } } } };
  t.throws(() => fitMachine([...runs, coordinator], { cores: 2, copy_gbps: 40 }), {
    message: 'calibration runs must share one parallel.layout (got spmd, coordinator)',
  });
});

test('a bad point in a cluster curve is one line naming the point and its value', (t) => {
  const tree = JSON.parse(JSON.stringify(machineCluster(KNOWN, 2))) as Record<string, Record<string, unknown>>;
  t.throws(() => validateCluster({ ...tree, gpu: { ...tree.gpu, parallel_efficiency: [[2, 0]] } }), { message: 'config error: cluster: gpu.parallel_efficiency.0.1 must be > 0 (got 0)' });
  t.throws(() => validateCluster({ ...tree, exchange_overhead_us: [[2, -5]] }), { message: 'config error: cluster: exchange_overhead_us.0.1 must be >= 0 (got -5)' });
});

test.serial('--calibrate runs every case it can, marks the ones that could not run, and then fails (exit 1)', async (t) => {
  const out = tempDir(t);
  // a tiny plan: the held-out runs' device 0 throws at step 3
  const plan: CalibrationPlan = { fit: [16, 24], heldOut: [20, 28], devices: [1], batches: [4, 8], steps: 5, skip: 1, rounds: 1, heldOutSets: ['parallel.fault.device=0', 'parallel.fault.kind=throw', 'parallel.fault.step=3'] };
  const r = await calibrate({ plan, out });
  t.is(r.cases.length, 2);
  for (const c of r.cases) {
    t.regex(c.failed!, /device 0/);
    t.is(c.error, null);
  }
  t.is(r.max_error, null);
  t.regex(calibrationTable(r), /could not run: .*device 0/);
  t.throws(() => assertCalibrated(r), { instanceOf: CalibrationError, message: /^2 of 2 held-out cases could not run \(first: d_model 20, 1 devices: / });
  t.is(exitCodeFor(new CalibrationError('x')).code, 1);
});
