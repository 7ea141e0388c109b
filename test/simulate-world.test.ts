import test from 'ava';
import { readFileSync } from 'node:fs';
import { loadCluster, validateCluster } from '../src/sim/cluster.js';
import { uniformA2aUs } from '../src/sim/collectives/all-to-all.js';
import { commGroup } from '../src/sim/collectives/group.js';
import { collectiveReport } from '../src/sim/collectives/measure.js';
import { gemmUs } from '../src/sim/compute.js';
import { cfg } from './helpers.js';

// The cost model held against published measurements (test/fixtures: the numbers, with their sources). The
// README's validation tables print the same comparisons, every point, with its error. Two kinds:
//  - validation: measurements no constant was derived from (XLA's all-to-all sweep; XLA's GEMM table less
//    the shapes that set matmul_efficiency and kernel_us);
//  - consistency checks: measurements that are the source of a constant (the NCCL maintainers' figures
//    are where the NVLink and NIC bandwidths come from): they agree by construction, and check only that
//    the collective formulas give back their own inputs.
const h100 = loadCluster('configs/clusters/8xh100.yaml');
const json = (f: string) => JSON.parse(readFileSync(new URL(`./fixtures/${f}`, import.meta.url), 'utf8'));
const err = (predicted: number, measured: number) => (predicted - measured) / measured;

test('validation: GEMMs against XLA\'s measured sm_90 GEMM table, the 69 of 72 shapes that set no constant (median error under 10%, 80% within 20%)', (t) => {
  const table = json('xla-sm90-gemm.json') as { rows: [number, number, number, number, number][] };
  const config = cfg();
  // 4096³ set matmul_efficiency (0.792); the fastest shapes (5.856 µs, two of them) set kernel_us
  const fastest = Math.min(...table.rows.map(([b, m, n, k, flops]) => (2 * b * m * n * k) / flops));
  const held = table.rows.filter(([b, m, n, k, flops]) => !(m === 4096 && n === 4096 && k === 4096) && (2 * b * m * n * k) / flops > fastest * (1 + 1e-9));
  t.is(held.length, 69);
  const errors = held.map(([b, m, n, k, flops]) => {
    const measured = ((2 * b * m * n * k) / flops) * 1e6; // µs
    return Math.abs(err(gemmUs(h100, config, [{ m, k, n, count: b }]), measured));
  }).sort((a, b) => a - b);
  const median = errors[Math.floor(errors.length / 2)]!;
  const within = errors.filter((e) => e < 0.2).length / errors.length;
  t.true(median < 0.1, `median |error| ${(100 * median).toFixed(1)}%`);
  t.true(within >= 0.8, `${(100 * within).toFixed(0)}% of shapes within 20%`);
  t.log(`median |error| ${(100 * median).toFixed(1)}%, ${(100 * within).toFixed(0)}% within 20%, worst ${(100 * errors.at(-1)!).toFixed(0)}%`);
});

test('validation: all-to-all on 8 H100s against XLA\'s measured size sweep, within 20% from 32 MiB a rank up', (t) => {
  const sweep = json('collectives-hopper.json').all_to_all_8_gpus.rows as [number, number][];
  const group = commGroup(h100, 8);
  for (const [bytes, algbw] of sweep) {
    const measured = (bytes / algbw) * 1e6;
    const e = err(uniformA2aUs(h100, group, bytes), measured);
    if (bytes >= 32 * 2 ** 20) t.true(Math.abs(e) < 0.2, `${bytes} bytes: ${(100 * e).toFixed(1)}%`);
    t.log(`${bytes} bytes per rank: measured ${measured.toFixed(1)} µs, model ${(measured * (1 + e)).toFixed(1)} µs (${(100 * e).toFixed(1)}%)`);
  }
});

// Not validation: configs/clusters/8xh100.yaml takes its NVLink bandwidth from nccl-tests issue 212 and its NIC
// bandwidth from issues 267 and 290, the very figures below (collectives-hopper.json names them).
test('consistency check, not validation: the collective formulas give back the NCCL figures the bandwidths came from (within 20%)', (t) => {
  const claims = json('collectives-hopper.json').claims as { what: string; collective: 'all_gather' | 'all_to_all'; gpus: number; one_gpu_per_node?: boolean; bytes: number; busbw_gbps: number }[];
  for (const c of claims) {
    const cluster = c.one_gpu_per_node ? validateCluster({ ...loadCluster('configs/clusters/2x8xh100.yaml'), gpus_per_node: 1, inter_node: { ...loadCluster('configs/clusters/2x8xh100.yaml').inter_node, nics_per_node: 1 } })
      : loadCluster(c.gpus > 8 ? 'configs/clusters/2x8xh100.yaml' : 'configs/clusters/8xh100.yaml');
    const r = collectiveReport(cluster, c.collective, c.bytes, c.gpus);
    const e = err(r.busbw_gbps, c.busbw_gbps);
    t.true(Math.abs(e) < 0.2, `${c.what}: model ${r.busbw_gbps.toFixed(1)} GB/s, measured ${c.busbw_gbps} (${(100 * e).toFixed(1)}%)`);
    t.log(`${c.what}: model ${r.busbw_gbps.toFixed(1)} GB/s, measured ${c.busbw_gbps} (${(100 * e).toFixed(1)}%)`);
  }
});
