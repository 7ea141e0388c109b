import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { loadCluster } from '../src/sim/cluster.js';
import { clusterFor } from '../src/sim/machine.js';
import { project } from '../src/sim/project.js';
import { vary } from '../src/sim/vary.js';
import { runWorkload } from '../src/sim/workload.js';
import { cfg, cli, tempDir } from './helpers.js';

// configs/clusters/this-machine.yaml projects a run with the run's own device threads, and says when the
// run's layout is not the one its constants were fitted on.

const machine = loadCluster('configs/clusters/this-machine.yaml');

test('this machine takes the config\'s device threads; a line when its layout or device count was not calibrated', (t) => {
  t.deepEqual(machine.calibration, { layout: 'spmd', devices: [1, 2, 4] });
  const spmd = clusterFor(machine, cfg('parallel.devices=4', 'parallel.layout=spmd', 'parallel.transport=threads'));
  t.like(spmd.cluster, { nodes: 1, gpus_per_node: 4 });
  t.deepEqual(spmd.notes, []);
  const coordinator = clusterFor(machine, cfg('parallel.devices=2', 'parallel.layout=coordinator'));
  t.is(coordinator.cluster.gpus_per_node, 2);
  t.deepEqual(coordinator.notes, [
    'note: this-machine was calibrated on spmd runs; this one\'s parallel.layout is coordinator, which the fit never saw, so its projection is that of spmd threads',
  ]);
  const eight = clusterFor(machine, cfg('parallel.devices=8', 'moe.n_experts=8', 'parallel.layout=spmd', 'parallel.transport=threads'));
  t.deepEqual(eight.notes, ['note: this-machine was calibrated at 1, 2, 4 device threads; 8 are interpolated or extrapolated from those']);
  // a GPU cluster is what its file says, whatever the config
  const h100 = loadCluster('configs/clusters/8xh100.yaml');
  t.deepEqual(clusterFor(h100, cfg('parallel.devices=4', 'parallel.layout=coordinator')), { cluster: h100, notes: [] });
});

/** a 4-device coordinator run, without training: its config and one logged step (125 ms a step measured) */
function fakeRun(t: { teardown: (f: () => void) => void }): string {
  const dir = tempDir(t);
  const config = cfg('parallel.devices=4', 'moe.n_experts=4');
  writeFileSync(join(dir, 'config.yaml'), YAML.stringify(config));
  const layers = [0, 1].map(() => ({ group_expert_counts: Array.from({ length: 4 }, () => [128, 64, 32, 32]) }));
  writeFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: 1, tokens_per_s: (16 * 64) / 0.125, layers })}\n`);
  return dir;
}

test.serial('simulate --run on this machine projects the run\'s 4 threads beside its measured 4-thread step, with one line on the layout', async (t) => {
  const run = fakeRun(t);
  const out = tempDir(t);
  const r = await cli('simulate', '--cluster', 'configs/clusters/this-machine.yaml', '--run', run, '--out', out);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^this-machine: 4 GPUs; tp 1, pp 1, vpp 1, dp 4, ep 4, .* fp32, /);
  t.regex(r.stdout, /measured on this machine: 125\.0 ms per step/);
  const notes = r.stdout.split('\n').filter((l) => l.startsWith('note:'));
  t.is(notes.length, 1);
  t.regex(notes[0]!, /calibrated on spmd runs; this one's parallel\.layout is coordinator/);
  const p = JSON.parse(readFileSync(join(out, 'projection.json'), 'utf8'));
  t.is(p.gpus, 4);
  t.deepEqual(p.notes, notes);
});

test('other device counts of a run: --vary cluster.gpus_per_node sets the threads; a config key keeps the config\'s own', (t) => {
  const w = runWorkload(fakeRun(t));
  const at = (D: number) => project({ ...machine, gpus_per_node: D }, w).step_ms;
  const rows = vary(machine, w, 'cluster.gpus_per_node', [1, 2, 4]);
  t.deepEqual(rows.map((r) => r.step_ms), [at(1), at(2), at(4)]);
  t.true(at(1) !== at(4));
  t.is(vary(machine, w, 'moe.capacity_factor', [1.25])[0]!.step_ms, at(4));
});
