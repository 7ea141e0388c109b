import test from 'ava';
import { readFileSync } from 'node:fs';
import { loadCluster } from '../src/sim/cluster.js';

// Consistency check, not validation: the shipped clusters' kernel-level constants (cluster.kernels) are the
// medians of DeepSeek's published H800 training trace, as test/fixtures/deepseek-h800-kernels.json holds them
// (deepseek-ai/profile-data, train.json). Each number is recomputed here from the kernels' rows and durations.
const trace = JSON.parse(readFileSync(new URL('./fixtures/deepseek-h800-kernels.json', import.meta.url), 'utf8'));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const peak = trace.hbm_peak_gbps * 1e3; // bytes a µs

test('the kernels section of every shipped GPU cluster is the trace\'s medians, rounded', (t) => {
  // SwiGLU forward: R rows of 10,308 bytes each; 31,104 rows in 117 µs is 2.74 TB/s, 0.818 of 3.35
  const swiglu = trace.swiglu_forward.instances_rows_us.map(([rows, us]: number[]) => (rows! * trace.swiglu_forward.bytes_per_row) / us! / peak);
  t.true(Math.abs(swiglu[0] - 0.818) < 1e-3);
  // unpermutation: R rows read and the 4,096 tokens' rows written, 14,336 bytes a row
  const u = trace.unpermute;
  const gather = u.instances_rows_us.map(([rows, us]: number[]) => ((rows! + u.tokens) * u.row_bytes) / us! / peak);
  const expected = {
    hbm_efficiency: +median(swiglu).toFixed(2), // 0.71
    gather_efficiency: +median(gather).toFixed(2), // 0.43
    floor_us: median(trace.one_wave_kernel_us.us), // 2.5
    host_forward_us: median(trace.host_gap_us.forward), // 16
    host_backward_us: median(trace.host_gap_us.backward), // 11
    moe_glue_forward: trace.moe_glue_kernels.forward,
    moe_glue_backward: trace.moe_glue_kernels.backward,
  };
  t.deepEqual(expected, {
    hbm_efficiency: 0.71, gather_efficiency: 0.43, floor_us: 2.5, host_forward_us: 16, host_backward_us: 11, moe_glue_forward: 38, moe_glue_backward: 43,
  });
  for (const name of ['8xh100', '2x8xh100', '64x8xh100', '256x8xh800', '8xa100']) {
    t.deepEqual(loadCluster(`configs/clusters/${name}.yaml`).kernels, expected, name);
  }
  t.is(loadCluster('configs/clusters/this-machine.yaml').kernels, undefined, 'this machine keeps the model it was fitted with');
});
