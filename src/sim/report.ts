import type { TopLevelSpec } from 'vega-lite';
import { htmlPage, type Chart, type Table } from '../core/instrument/page.js';
import { Recorder } from '../core/instrument/recorder.js';
import { toChromeTrace, type ChromeTrace } from '../core/instrument/trace.js';
import { maxOf } from '../core/util/extremes.js';
import type { Breakdown, Projection } from './project.js';
import type { VaryRow } from './vary.js';

/**
 * One micro-batch of the slowest pipeline stage as a Chrome trace (the `profile` format), then the
 * step's tail: a lane per traced GPU; every Switch layer's exchanges and experts take that GPU's own
 * time, then it waits for the pacing GPU (`wait`), as a synchronous all-to-all makes it. Dense work
 * is the same on every GPU.
 */
export function projectionTrace(p: Projection): ChromeTrace {
  const d = p.detail!;
  const st = d.stage;
  const rec = new Recorder();
  rec.step = 1;
  let t = 0;
  const lanes = d.gpus.map((_, k) => ({ kind: 'device', device: k }) as const);
  const all = (name: string, cat: string, us: number, layer?: number, dir?: 'fwd' | 'bwd') => {
    if (us <= 0) return;
    for (const lane of lanes) rec.add({ name, cat, lane, ts: t / 1000, dur: us / 1000, layer, dir });
    t += us;
  };
  const L = st.switch_layers.length;
  const dense = (st.dense_us + st.recompute_us) / Math.max(1, L + 1);
  const tp = st.tensor_parallel_us / Math.max(1, L + 1);
  const paced = (name: string, share: number, layer: number, dir: 'fwd' | 'bwd') => {
    const x = st.switch_layers[layer]!;
    const pace = maxOf(x.per_gpu.map((g) => (g.a2a + g.expert) * share));
    d.gpus.forEach((gpu, k) => {
      const g = x.per_gpu[gpu]!;
      const a2a = (g.a2a * share) / 2;
      const expert = g.expert * share;
      rec.add({
        name: `all_to_all_${name === 'forward' ? 'dispatch' : 'grad_out'}`, cat: 'comm', lane: lanes[k]!, ts: t / 1000,
        dur: a2a / 1000, layer, dir, args: { gpu },
      });
      rec.add({
        name: `expert_${name}`, cat: 'device', lane: lanes[k]!, ts: (t + a2a) / 1000, dur: expert / 1000, layer, dir,
        args: { gpu },
      });
      rec.add({
        name: `all_to_all_${name === 'forward' ? 'combine' : 'grad_in'}`, cat: 'comm', lane: lanes[k]!,
        ts: (t + a2a + expert) / 1000, dur: a2a / 1000, layer, dir, args: { gpu },
      });
      const own = 2 * a2a + expert;
      if (pace > own) rec.add({
        name: 'wait', cat: 'wait', lane: lanes[k]!, ts: (t + own) / 1000, dur: (pace - own) / 1000, layer, dir,
      });
    });
    t += pace;
  };
  for (let l = 0; l < L; l++) {
    all('dense_forward', 'compute', dense / 3, l, 'fwd');
    all('tensor_parallel', 'comm', tp / 2, l, 'fwd');
    paced('forward', 1 / 3, l, 'fwd');
  }
  all('dense_forward', 'compute', dense / 3);
  all('pipeline_p2p', 'comm', st.p2p_us);
  all('dense_backward', 'compute', (2 * dense) / 3);
  for (let l = L - 1; l >= 0; l--) {
    paced('backward', 2 / 3, l, 'bwd');
    all('tensor_parallel', 'comm', tp / 2, l, 'bwd');
    all('dense_backward', 'compute', (2 * dense) / 3, l, 'bwd');
  }
  all('fsdp', 'comm', st.fsdp_us);
  all('host_bound', 'wait', st.host_us);
  all('pipeline_bubble', 'wait', d.bubble_us);
  all('data_parallel', 'comm', d.data_parallel_us);
  all('optimizer', 'optimizer', d.optimizer_us);
  if (p.breakdown_ms.other > 0) all('other', 'other', p.breakdown_ms.other * 1000);
  const trace = toChromeTrace(rec, lanes.length, {
    cluster: p.cluster, gpus: p.gpus, traced_gpus: d.gpus, stage: st.stage,
    note: 'one micro-batch of the slowest stage, then the step\'s bubble, gradient reduction and optimizer',
  });
  for (const e of trace.traceEvents) if (e.name === 'process_name' && e.pid >= 2) e.args = { name: `GPU ${d.gpus[e.pid - 2]}` };
  return trace;
}

const PARTS: (keyof Breakdown)[] = [
  'dense', 'recompute', 'experts', 'all_to_all', 'tensor_parallel', 'pipeline_p2p', 'fsdp', 'host', 'bubble',
  'data_parallel', 'optimizer', 'other',
];

/**
 * Bars of parts as shares of each run's own step (a 0.24 ms projection beside a 147 ms measurement stays
 * readable), absolute ms in the tooltip and the label.
 */
function shares(runs: { run: string; parts: Record<string, number> }[]) {
  return runs.flatMap(({ run, parts }) => {
    const total = Object.values(parts).reduce((a, b) => a + b, 0);
    const label = `${run} (${total.toFixed(total < 10 ? 3 : 1)} ms)`;
    return Object.entries(parts).filter(([, ms]) => ms > 0).map(([part, ms]) => ({
      run: label, part, ms, share: total > 0 ? ms / total : 0,
    }));
  });
}

/**
 * The page: where a step goes (measured beside projected, each as shares of its own step), per Switch layer,
 * memory by part, the collectives, the what-if table.
 */
export function projectionPage(
  p: Projection, measured: Record<string, number> | undefined, varied?: { key: string; rows: VaryRow[] },
): string {
  const bars = shares([
    { run: `projected: ${p.cluster}`, parts: Object.fromEntries(PARTS.map((k) => [k, p.breakdown_ms[k]])) },
    ...(measured ? [{ run: 'measured: this machine', parts: measured }] : []),
  ]);
  const memory = Object.entries({
    weights: p.memory.weights_gb, gradients: p.memory.grads_gb, optimizer: p.memory.optimizer_gb,
    activations: p.memory.activations_gb, 'all-to-all buffers': p.memory.a2a_buffers_gb, logits: p.memory.logits_gb,
  })
    .map(([part, gb]) => ({ gpu: 'busiest GPU', part, gb }));
  const charts: Chart[] = [
    {
      id: 'breakdown', title: 'Where a step goes (share of each step; its length in the label)',
      note: measured ? 'Measured from the run\'s profile.json on this machine, and projected on the cluster: each ' +
        'bar is its own step, so very different lengths stay ' +
        'readable.' : 'Projected; profile the run (switch-sim profile) to see the measured breakdown beside it.',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 640, data: { values: bars }, mark: 'bar',
        encoding: {
          y: { field: 'run', type: 'nominal', title: null, axis: { labelLimit: 420 } },
          x: { field: 'share', type: 'quantitative', stack: 'zero', axis: { format: '%' }, title: 'share of the step' },
          color: { field: 'part', type: 'nominal' },
          tooltip: [{ field: 'part' }, { field: 'ms', format: '.4f', title: 'ms' }, { field: 'share', format: '.1%' }],
        },
      } as TopLevelSpec,
    },
    {
      id: 'layers', title: 'Per Switch layer, one micro-batch: all-to-all and expert compute on the pacing GPU (µs)',
      note: 'The pacing GPU is the one whose all-to-alls plus experts take longest. Tooltips give the straggler ' +
        'factor (it over the mean GPU) and the drop fraction.',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 640,
        data: { values: p.layers.flatMap((l) => [
          {
            layer: l.layer, what: 'all-to-all (exposed)', us: l.exposed_comm_us, straggler: l.straggler_factor,
            drops: l.drop_fraction,
          },
          { layer: l.layer, what: 'experts', us: l.expert_us, straggler: l.straggler_factor, drops: l.drop_fraction },
        ]) },
        mark: 'bar',
        encoding: {
          x: { field: 'layer', type: 'ordinal' }, xOffset: { field: 'what' }, y: { field: 'us', type: 'quantitative' },
          color: { field: 'what', type: 'nominal' },
          tooltip: [{ field: 'us', format: '.1f' }, { field: 'straggler', format: '.3f' }, {
            field: 'drops', format: '.3f',
          }],
        },
      } as TopLevelSpec,
    },
    {
      id: 'memory',
      title: `Memory of the busiest GPU: ${p.memory.total_gb.toFixed(1)} ` +
        `GB${p.fits === null ? '' : p.fits ? ' (fits)' : ' (does not fit)'}`,
      note: 'Weights, gradients and optimizer state as sharded by the plan; activations of the micro-batches in ' +
        'flight; the largest transient buffers.',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 640, data: { values: memory }, mark: 'bar',
        encoding: {
          y: { field: 'gpu', type: 'nominal', title: null },
          x: { field: 'gb', type: 'quantitative', stack: 'zero', title: 'GB' },
          color: { field: 'part', type: 'nominal' }, tooltip: [{ field: 'part' }, { field: 'gb', format: '.2f' }],
        },
      } as TopLevelSpec,
    },
  ];
  const projectedMs = p.step_ms;
  const measuredMs = measured ? Object.values(measured).reduce((a, b) => a + b, 0) : 0;
  const partRows = PARTS.filter((k) => p.breakdown_ms[k] > 0 || (measured?.[k] ?? 0) > 0).map((k) => [
    k, p.breakdown_ms[k], p.breakdown_ms[k] / projectedMs,
    ...(measured ? [measured[k] ?? 0, (measured[k] ?? 0) / measuredMs] : []),
  ]);
  const tables: Table[] = [{
    title: `Where a step goes, ms and shares (projected step ${projectedMs.toPrecision(4)} ms` +
      `${measured ? `, measured ${measuredMs.toPrecision(4)} ms` : ''})`,
    columns: [
      'part', 'projected ms', 'projected share', ...(measured ? ['measured ms', 'measured share'] : []),
    ], rows: partRows }, {
      title: 'Collectives of a step (the slowest stage)',
      columns: ['collective', 'bytes per GPU', 'µs each', 'per step', 'ms per step'],
      rows: p.collectives.map((c) => [c.name, Math.round(c.bytes), c.us_each, c.per_step, c.ms_per_step]),
    }];
  if (varied) tables.push({
    title: `What if: ${varied.key}`,
    columns: [
      varied.key, 'step ms', 'tokens/s', 'MFU', 'dispatch overhead', 'drop fraction', 'straggler', 'GB per GPU',
    ],
    rows: varied.rows.map((r) => [
      String(r.value), r.step_ms, Math.round(r.tokens_per_s), r.mfu, r.dispatch_overhead_fraction, r.drop_fraction,
      r.straggler_factor, r.memory_gb_per_gpu,
    ]),
  });
  return htmlPage({ title: `switch-sim simulate: ${p.cluster}`, intro: summaryLines(p), charts, tables });
}

export function summaryLines(p: Projection): string[] {
  const b = p.breakdown_ms;
  const pl = p.plan;
  const worst = p.layers.length > 0 ? p.layers.reduce((
    a, l,
  ) => (l.straggler_factor > a.straggler_factor ? l : a)) : undefined;
  return [
    `${p.cluster}: ${p.gpus} GPUs; tp ${pl.tp}, pp ${pl.pp}, vpp ${pl.vpp}, dp ${pl.dp}, ep ${pl.ep}, etp ${pl.etp}, ` +
      `edp ${pl.edp}; ${pl.micro_batches} micro-batch${pl.micro_batches > 1 ? 'es' : ''} of ${pl.micro_batch} ` +
      `(global batch ${pl.global_batch}); shard ${pl.shard}, recompute ${pl.recompute}, ${pl.precision}, overlap ` +
      `${pl.overlap}.`,
    `all-to-all ${p.all_to_all}, dispatch ${p.dispatch}, ` +
      `${p.source === 'run'
        ? `routing ${p.routing === 'recorded' ? 'as recorded' : 'uniform (forced)'}`
        : 'uniform routing from the config'}, ` +
      `${Math.round(p.tokens_per_gpu)} tokens per GPU per micro-batch.`,
    `step ${p.step_ms.toFixed(3)} ms, ${Math.round(p.tokens_per_s).toLocaleString('en-US')} tokens/s ` +
      `(${Math.round(p.tokens_per_s_per_gpu).toLocaleString('en-US')} per GPU), ${p.model_tflops_per_gpu.toFixed(1)} ` +
      `model TFLOP/s per GPU, MFU ${(100 * p.mfu).toFixed(1)}% (Megatron's FLOP count, recompute not counted), ` +
      `bubble ${(100 * p.breakdown_ms.bubble / p.step_ms).toFixed(1)}% of the step (Megatron's bubble fraction ` +
      `(pp − 1)/(vpp · m), over the ideal time: ${p.bubble_fraction.toFixed(3)}).`,
    `dense ${b.dense.toFixed(3)} ms, experts ${b.experts.toFixed(3)}, all-to-all ${b.all_to_all.toFixed(3)}, tensor ` +
      `parallel ${b.tensor_parallel.toFixed(3)}, pipeline p2p ${b.pipeline_p2p.toFixed(3)}, fsdp ` +
      `${b.fsdp.toFixed(3)}, recompute ${b.recompute.toFixed(3)}, host-bound ${b.host.toFixed(3)}, bubble ` +
      `${b.bubble.toFixed(3)}, data parallel ${b.data_parallel.toFixed(3)}, optimizer ${b.optimizer.toFixed(3)} ms` +
      (p.measured_ms_per_step ? `; measured on this machine: ${p.measured_ms_per_step.toFixed(1)} ms per step.` : '.'),
    `communication ${p.exposed_comm_ms.toFixed(3)} ms exposed, ${p.overlapped_comm_ms.toFixed(3)} ms hidden behind ` +
      `compute; dispatch overhead ${(100 * p.dispatch_overhead_fraction).toFixed(1)}% of the step.`,
    `memory ${p.memory.total_gb.toFixed(1)} GB per GPU (weights ${p.memory.weights_gb.toFixed(1)}, gradients ` +
      `${p.memory.grads_gb.toFixed(1)}, optimizer ${p.memory.optimizer_gb.toFixed(1)}, activations ` +
      `${p.memory.activations_gb.toFixed(1)})${p.fits === null ? '' : p.fits ? ', fits' : ', DOES NOT FIT'}` +
      (worst ? `; worst straggler factor ${worst.straggler_factor.toFixed(3)} (Switch layer ${worst.layer}).` : '.'),
    ...(p.notes ?? []),
    ...(p.layers.some((l) => l.groups_per_token !== 1) ? [`limited routing: each token goes to ` +
      `${(p.layers.reduce((a, l) => a + l.groups_per_token, 0) / p.layers.length).toFixed(2)} expert groups on ` +
      `average, one copy per group (its all-to-all bytes scaled by that over top-k).`] : []),
  ];
}

export function varyTable(key: string, rows: VaryRow[]): string {
  const head = `${key.padEnd(24)} ${'step ms'.padStart(10)} ${'tokens/s'.padStart(12)} ${'MFU'.padStart(7)} ` +
    `${'dispatch'.padStart(9)} ${'drops'.padStart(7)} ${'straggler'.padStart(9)} ${'GB/GPU'.padStart(7)}\n`;
  return head + rows.map((r) => `${String(r.value).padEnd(24)} ${r.step_ms.toFixed(3).padStart(10)} ` +
    `${Math.round(r.tokens_per_s).toString().padStart(12)} ${(100 * r.mfu).toFixed(2).padStart(6)}% ` +
    `${(100 * r.dispatch_overhead_fraction).toFixed(1).padStart(8)}% ` +
    `${(100 * r.drop_fraction).toFixed(2).padStart(6)}% ${r.straggler_factor.toFixed(3).padStart(9)} ` +
    `${r.memory_gb_per_gpu.toFixed(1).padStart(7)}`).join('\n') + '\n';
}
