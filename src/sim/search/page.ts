import type { TopLevelSpec } from 'vega-lite';
import { htmlPage } from '../../core/instrument/page.js';
import { megatronArgs, planLine } from './explain.js';
import type { SearchedPlan, SearchResult } from './search.js';

/** The plans no other plan beats in both step time and memory, by increasing memory. */
export function paretoFront(plans: SearchedPlan[]): SearchedPlan[] {
  const front: SearchedPlan[] = [];
  for (const p of [...plans].sort((a, b) => a.memory_gb_per_gpu - b.memory_gb_per_gpu || a.step_ms - b.step_ms)) {
    if (front.length === 0 || p.step_ms < front[front.length - 1]!.step_ms) front.push(p);
  }
  return front;
}

const round = (x: number, d = 3) => Number(x.toFixed(d));

/**
 * search.html: every projected plan (every plan that fits) as a dot of step time against memory per GPU, coloured by
 * pp, the GPU's memory drawn, the Pareto front joined, the top plans labelled, each dot's plan on hover; then the
 * top plans as a table with their Megatron-LM flags.
 */
export function searchPage(r: SearchResult, top: number): string {
  const best = r.fitting.slice(0, top > 0 ? top : 10);
  const rank = new Map(best.map((p, i) => [p, i + 1]));
  const front = new Set(paretoFront(r.fitting));
  const points = r.fitting.map((p) => ({
    step_ms: round(p.step_ms), memory_gb: round(p.memory_gb_per_gpu), pp: `pp ${p.plan.pp}`,
    tokens_per_s_per_gpu: Math.round(p.tokens_per_s_per_gpu), mfu: round(p.mfu), plan: planLine(p.plan),
    front: front.has(p), label: rank.has(p) ? `#${rank.get(p)}` : '',
  }));
  const x = { field: 'memory_gb', type: 'quantitative', title: 'memory per GPU (GB)' } as const;
  const y = { field: 'step_ms', type: 'quantitative', title: 'step time (ms)', scale: { type: 'log' } } as const;
  const layers: TopLevelSpec[] = [
    {
      mark: { type: 'point', filled: true, size: 24, opacity: 0.5 },
      encoding: {
        x, y, color: { field: 'pp', type: 'nominal', title: null },
        tooltip: [{ field: 'plan', title: 'plan' }, { field: 'step_ms', title: 'step ms' }, { field: 'memory_gb', title: 'GB/GPU' },
          { field: 'tokens_per_s_per_gpu', title: 'tokens/s/GPU' }, { field: 'mfu', title: 'MFU', format: '.1%' }],
      },
    } as TopLevelSpec,
    { transform: [{ filter: 'datum.front' }], mark: { type: 'line', color: '#d62728', strokeWidth: 1.5 },
      encoding: { x, y, order: { field: 'memory_gb', type: 'quantitative' } } } as TopLevelSpec,
    { transform: [{ filter: "datum.label != ''" }], mark: { type: 'text', align: 'left', dx: 5, dy: -5, fontSize: 11 },
      encoding: { x, y, text: { field: 'label' } } } as TopLevelSpec,
  ];
  if (r.context.memoryGb !== undefined) {
    layers.push({ data: { values: [{ limit: r.context.memoryGb }] }, mark: { type: 'rule', color: '#555', strokeDash: [6, 4] },
      encoding: { x: { field: 'limit', type: 'quantitative' } } } as TopLevelSpec);
  }
  const spec = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 900, height: 520, data: { values: points }, layer: layers } as TopLevelSpec;
  const ctx = r.context;
  return htmlPage({
    title: `Plan search: ${ctx.config.model.n_layers} layers, ${ctx.experts} experts on ${ctx.cluster.name}`,
    intro: [
      `${r.considered.toLocaleString('en-US')} plans considered, ${r.refused.toLocaleString('en-US')} refused by Megatron-Core's rules, `
        + `${(r.pruned + r.over).toLocaleString('en-US')} over the memory (${r.pruned.toLocaleString('en-US')} by the bound), `
        + `${r.projected.toLocaleString('en-US')} projected.`,
      `Global batch ${ctx.globalBatch} sequences of ${ctx.seq} tokens on ${ctx.gpus} GPUs.`,
    ],
    charts: [{
      id: 'plans', title: 'Every projected plan: step time against memory per GPU',
      note: 'Dashed: the GPU\'s memory. Red: the Pareto front (no plan both faster and smaller). Labels: the fastest plans. '
        + 'Hover a dot for its plan.',
      spec,
    }],
    tables: [{
      title: 'The fastest plans', columns: ['#', 'step ms', 'tokens/s/GPU', 'MFU %', 'GB/GPU', 'plan', 'Megatron-LM flags'],
      rows: best.map((p, i) => [i + 1, round(p.step_ms, 1), Math.round(p.tokens_per_s_per_gpu), round(100 * p.mfu, 1),
        round(p.memory_gb_per_gpu, 1), planLine(p.plan), megatronArgs(ctx.config, p.plan)]),
    }],
  });
}
