import type { TopLevelSpec } from 'vega-lite';
import { htmlPage, type Chart, type Table } from '../report/page.js';
import { Recorder } from '../profile/recorder.js';
import { toChromeTrace, type ChromeTrace } from '../profile/trace.js';
import type { Projection } from './project.js';
import type { VaryRow } from './vary.js';
import { maxOf } from '../util/extremes.js';

/**
 * One projected step as a Chrome trace (the `profile` format): a lane per traced GPU; every Switch
 * layer's exchanges and expert work take that GPU's own time, then it waits for the slowest GPU
 * (`wait`), as a synchronous all-to-all makes it. Dense stages are the same on every GPU.
 */
export function projectionTrace(p: Projection): ChromeTrace {
  const d = p.detail!;
  const rec = new Recorder();
  rec.step = 1;
  const L = d.layers.length;
  let t = 0;
  const lanes = d.gpus.map((_, k) => ({ kind: 'device', device: k }) as const);
  const all = (name: string, cat: string, us: number, layer?: number, dir?: 'fwd' | 'bwd') => {
    for (const lane of lanes) rec.add({ name, cat, lane, ts: t / 1000, dur: us / 1000, layer, dir });
    t += us;
  };
  /** each traced GPU works `own[k]` µs, then waits for the slowest GPU of the whole cluster (`pace`) */
  const paced = (name: string, cat: string, own: number[], pace: number, layer: number, dir: 'fwd' | 'bwd') => {
    own.forEach((us, k) => {
      rec.add({ name, cat, lane: lanes[k]!, ts: t / 1000, dur: us / 1000, layer, dir, args: { gpu: d.gpus[k] } });
      if (pace > us) rec.add({ name: 'wait', cat: 'wait', lane: lanes[k]!, ts: (t + us) / 1000, dur: (pace - us) / 1000, layer, dir });
    });
    t += pace;
  };
  const stage = d.dense_us / 3 / (L + 1);
  for (let l = 0; l < L; l++) {
    all('dense_forward', 'compute', stage, l, 'fwd');
    const x = d.layers[l]!;
    paced('all_to_all_dispatch', 'comm', x.a2a, x.a2aPace, l, 'fwd');
    paced('expert_forward', 'device', x.expert.map((e) => e / 3), x.expertPace / 3, l, 'fwd');
    paced('all_to_all_combine', 'comm', x.a2a, x.a2aPace, l, 'fwd');
  }
  all('dense_forward', 'compute', stage);
  all('dense_backward', 'compute', 2 * stage);
  for (let l = L - 1; l >= 0; l--) {
    const x = d.layers[l]!;
    paced('all_to_all_grad_out', 'comm', x.a2a, x.a2aPace, l, 'bwd');
    paced('expert_backward', 'device', x.expert.map((e) => (2 * e) / 3), (2 * x.expertPace) / 3, l, 'bwd');
    paced('all_to_all_grad_in', 'comm', x.a2a, x.a2aPace, l, 'bwd');
    all('dense_backward', 'compute', 2 * stage, l, 'bwd');
  }
  all('allreduce', 'comm', d.allreduce_us);
  all('optimizer', 'optimizer', d.optimizer_us);
  if (p.breakdown_ms.other > 0) all('other', 'other', p.breakdown_ms.other * 1000);
  const trace = toChromeTrace(rec, lanes.length, { cluster: p.cluster, gpus: p.gpus, traced_gpus: d.gpus });
  for (const e of trace.traceEvents) if (e.name === 'process_name' && e.pid >= 2) e.args = { name: `GPU ${d.gpus[e.pid - 2]}` };
  return trace;
}

const PARTS = ['dense', 'experts', 'all_to_all', 'allreduce', 'optimizer', 'other'] as const;

/** The page: projected breakdowns (and the measured one, when the run was profiled), per-layer comm and compute, the what-if table. */
export function projectionPage(p: Projection, measured: Record<string, number> | undefined, varied?: { key: string; rows: VaryRow[] }): string {
  const bars = [
    ...PARTS.map((part) => ({ run: `projected: ${p.cluster}`, part, ms: p.breakdown_ms[part] })),
    ...Object.entries(measured ?? {}).map(([part, ms]) => ({ run: 'measured: this machine', part, ms })),
  ];
  const charts: Chart[] = [
    {
      id: 'breakdown', title: 'Where a step goes (ms)', note: measured ? 'Measured from the run\'s profile.json on this machine, projected on the cluster.' : 'Projected; profile the run (switch-sim profile) to see the measured breakdown beside it.',
      spec: { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 640, data: { values: bars }, mark: 'bar', encoding: { y: { field: 'run', type: 'nominal', title: null }, x: { field: 'ms', type: 'quantitative', stack: 'zero' }, color: { field: 'part', type: 'nominal' }, tooltip: [{ field: 'part' }, { field: 'ms', format: '.3f' }] } } as TopLevelSpec,
    },
    {
      id: 'layers', title: 'Per Switch layer: all-to-all and expert compute (µs per step, slowest GPU)', note: 'Tooltips give the straggler factor (slowest GPU over the mean) and the drop fraction.',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 640,
        data: { values: p.layers.flatMap((l) => [{ layer: l.layer, what: 'all-to-all', us: l.comm_us, straggler: l.straggler_factor, drops: l.drop_fraction }, { layer: l.layer, what: 'experts', us: l.compute_us, straggler: l.straggler_factor, drops: l.drop_fraction }]) },
        mark: 'bar', encoding: { x: { field: 'layer', type: 'ordinal' }, xOffset: { field: 'what' }, y: { field: 'us', type: 'quantitative' }, color: { field: 'what', type: 'nominal' }, tooltip: [{ field: 'us', format: '.1f' }, { field: 'straggler', format: '.3f' }, { field: 'drops', format: '.3f' }] },
      } as TopLevelSpec,
    },
  ];
  const tables: Table[] = [];
  if (varied) tables.push({ title: `What if: ${varied.key}`, columns: [varied.key, 'step ms', 'tokens/s', 'MFU', 'dispatch overhead', 'drop fraction', 'straggler'], rows: varied.rows.map((r) => [String(r.value), r.step_ms, Math.round(r.tokens_per_s), r.mfu, r.dispatch_overhead_fraction, r.drop_fraction, r.straggler_factor]) });
  return htmlPage({ title: `switch-sim simulate: ${p.cluster}`, intro: summaryLines(p), charts, tables });
}

export function summaryLines(p: Projection): string[] {
  const b = p.breakdown_ms;
  return [
    `${p.cluster}: ${p.gpus} GPUs, all-to-all ${p.all_to_all}, dispatch ${p.dispatch} (${p.source === 'run' ? 'routing as recorded' : 'uniform routing from the config'}), ${p.tokens_per_gpu} tokens per GPU.`,
    `step ${p.step_ms.toFixed(3)} ms, ${Math.round(p.tokens_per_s).toLocaleString('en-US')} tokens/s, MFU ${(100 * p.mfu).toFixed(2)}%, dispatch overhead ${(100 * p.dispatch_overhead_fraction).toFixed(1)}% of the step.`,
    `dense ${b.dense.toFixed(3)} ms, experts ${b.experts.toFixed(3)} ms, all-to-all ${b.all_to_all.toFixed(3)} ms, all-reduce ${b.allreduce.toFixed(3)} ms, optimizer ${b.optimizer.toFixed(3)} ms` +
      (p.measured_ms_per_step ? `; measured on this machine: ${p.measured_ms_per_step.toFixed(1)} ms per step.` : '.'),
    `worst straggler factor ${maxOf(p.layers.map((l) => l.straggler_factor)).toFixed(3)} (layer ${p.layers.reduce((a, l) => (l.straggler_factor > a.straggler_factor ? l : a)).layer}).`,
  ];
}

export function varyTable(key: string, rows: VaryRow[]): string {
  const head = `${key.padEnd(24)} ${'step ms'.padStart(10)} ${'tokens/s'.padStart(12)} ${'MFU'.padStart(7)} ${'dispatch'.padStart(9)} ${'drops'.padStart(7)} ${'straggler'.padStart(9)}\n`;
  return head + rows.map((r) => `${String(r.value).padEnd(24)} ${r.step_ms.toFixed(3).padStart(10)} ${Math.round(r.tokens_per_s).toString().padStart(12)} ${(100 * r.mfu).toFixed(2).padStart(6)}% ${(100 * r.dispatch_overhead_fraction).toFixed(1).padStart(8)}% ${(100 * r.drop_fraction).toFixed(2).padStart(6)}% ${r.straggler_factor.toFixed(3).padStart(9)}`).join('\n') + '\n';
}
