import { writeFileSync } from 'node:fs';
import type { TopLevelSpec } from 'vega-lite';
import { resolveConfig } from '../../core/config/load.js';
import { ConfigError } from '../../core/config/errors.js';
import { Dataset } from '../../core/data/batches.js';
import { loadCorpus } from '../../core/data/corpus.js';
import { CharTokenizer } from '../../core/data/tokenizer.js';
import { switchBlocks } from '../../core/model/stages.js';
import { loadCheckpoint } from '../../training/checkpoint.js';
import { inProcessConfig } from '../../training/in-process.js';
import { Session } from '../../runtime/coordinator/session.js';
import { htmlPage, type Chart, type Table } from '../../core/instrument/page.js';
import { maxOf } from '../../core/util/extremes.js';

export interface InspectOptions {
  checkpoint: string;
  /** route this text (characters outside the vocabulary are left out), else a validation batch */
  text?: string;
  /** which validation batch (as the trainer's evaluation draws them) */
  batch?: number;
  sets?: string[];
  out: string;
}

/** One character as a Switch layer routed it. */
export interface RoutedChar {
  layer: number;
  row: number;
  col: number;
  /** position within its routing group */
  pos: number;
  char: string;
  /** its first choice */
  expert: number;
  /** all k choices, best first, and the expert group (device, or moe.route_groups group) of each */
  experts: number[];
  groups: number[];
  prob: number;
  dropped: boolean;
  cls: CharClass;
}

export type CharClass = 'letter' | 'space' | 'newline' | 'punctuation' | 'digit or other';

export function charClass(c: string): CharClass {
  if (c === '\n') return 'newline';
  if (/\s/.test(c)) return 'space';
  if (/\p{L}/u.test(c)) return 'letter';
  if (/\p{P}/u.test(c)) return 'punctuation';
  return 'digit or other';
}

const shown = (c: string) => (c === '\n' ? '↵' : c === ' ' ? '·' : c);

/**
 * Routes a text (or a validation batch) through a checkpoint at the evaluation capacity factor and
 * returns each character's expert, router probability and fate (kept or dropped), per Switch layer.
 */
export async function routeText(opts: Omit<InspectOptions, 'out'>): Promise<{ chars: RoutedChar[]; layers: number;
  experts: number; capacityFactor: number; groupSize: number; blocks: number[] }> {
  const ckpt = loadCheckpoint(opts.checkpoint);
  let config = inProcessConfig(ckpt.config, opts.sets);
  const tok = new CharTokenizer(ckpt.vocab);
  let x: Int32Array;
  let rows: number;
  if (opts.text !== undefined) {
    const { ids } = tok.encodeKnown(opts.text);
    if (ids.length < 2)
      throw new ConfigError(`--text must hold at least 2 characters of the checkpoint's ` +
        `vocabulary (got ${ids.length})`);
    // windows of seq_len, as many as fill whole routing groups (one group per device); a text shorter
    // than one window per device is routed as a single group
    const T = Math.min(config.data.seq_len, ids.length);
    const G = config.parallel.devices;
    rows = Math.floor(ids.length / T);
    const whole = rows >= G;
    if (whole) rows -= rows % G;
    x = ids.subarray(0, rows * T);
    config = resolveConfig({ base: config as unknown as Record<string, unknown>,
      sets: [`data.batch_size=${rows}`, ...(whole ? [] : ['parallel.devices=1'])] }).config;
  } else {
    const corpus = await loadCorpus(config.data.dataset, config.data.path);
    const data = new Dataset(tok, corpus.text, config.data.val_fraction, config.data.seq_len);
    const b = data.batch('val', config.seed, opts.batch ?? 0, config.data.batch_size);
    x = b.x;
    rows = b.batch;
  }
  const T = x.length / rows;
  const y = Int32Array.from(x, (_, i) => x[(i + 1) % x.length]!);
  const session = await Session.create(config, tok.vocabSize);
  try {
    await session.restore(ckpt.arrays);
    const r = await session.engine.evaluate(x, y, rows, ckpt.step);
    const plans = r.plans[0]!;
    const probs = r.probs[0]!;
    const E = config.moe.n_experts;
    const perGroup = E / (config.moe.route_groups || config.parallel.devices);
    const chars: RoutedChar[] = [];
    plans.forEach((plan, layer) => {
      for (let t = 0; t < x.length; t++) {
        const i = t * plan.topK; // the first choice
        const c = tok.chars[x[t]!]!;
        const experts = Array.from(plan.expert.subarray(i, i + plan.topK));
        chars.push({
          layer, row: Math.floor(t / T), col: t % T, pos: t % plan.tokensPerGroup, char: c, expert: plan.expert[i]!,
          experts, groups: experts.map((e) => Math.floor(e / perGroup)),
          prob: probs[layer]![t * E + plan.expert[i]!]!, dropped: plan.slot[i]! < 0, cls: charClass(c),
        });
      }
    });
    return { chars, layers: plans.length, experts: E, capacityFactor: config.moe.eval_capacity_factor,
      groupSize: plans[0]?.tokensPerGroup ?? x.length, blocks: switchBlocks(config) };
  } finally {
    await session.close();
  }
}

/** `switch-sim inspect`: the page of which tokens go where. */
export async function inspect(opts: InspectOptions): Promise<{ file: string; dropped: number; tokens: number }> {
  const r = await routeText(opts);
  const blocks = r.blocks;
  const charts: Chart[] = [];
  for (let l = 0; l < r.layers; l++) {
    const values = r.chars.filter((c) => c.layer === l)
      .map((c) => ({ ...c, shown: shown(c.char), fate: c.dropped ? 'dropped' : 'kept', chosen: c.experts.join(', '),
        in_groups: [...new Set(c.groups)].join(', ') }));
    const cols = maxOf(values.map((v) => v.col)) + 1;
    const rows = maxOf(values.map((v) => v.row)) + 1;
    const enc = { x: { field: 'col', type: 'ordinal', axis: null },
      y: { field: 'row', type: 'ordinal', axis: null } } as const;
    const spec: TopLevelSpec = {
      width: cols * 11, height: rows * 17,
      data: { values },
      layer: [
        { mark: { type: 'rect', color: '#e45756', opacity: 0.35 }, transform: [{ filter: 'datum.dropped' }],
          encoding: { ...enc } },
        {
          mark: { type: 'text', font: 'monospace', fontSize: 13, fontWeight: 'bold' },
          encoding: {
            ...enc, text: { field: 'shown' },
            color: { field: 'expert', type: 'nominal', scale: { scheme: 'category10' }, title: 'expert' },
            tooltip: [{ field: 'char' }, { field: 'expert', title: 'first expert' },
              { field: 'chosen', title: 'experts (top-k)' }, { field: 'in_groups', title: 'expert groups (devices)' },
              { field: 'prob', title: 'router score', format: '.3f' }, { field: 'fate' },
              { field: 'pos', title: 'position in group' }],
          },
        },
      ],
    };
    charts.push({ id: `text_${l}`, title: `Switch layer ${l} (block ${blocks[l]})`,
      note: 'Each character in the colour of its expert (first choice); a red cell was dropped over capacity and ' +
        'rode the residual stream. Hover for the router probability.', spec });
  }
  const bins = Math.min(32, r.groupSize);
  const binned = new Map<string, { layer: number; bin: number; n: number; dropped: number }>();
  for (const c of r.chars) {
    const bin = Math.floor((c.pos * bins) / r.groupSize);
    const k = `${c.layer}/${bin}`;
    const e = binned.get(k) ?? { layer: c.layer, bin, n: 0, dropped: 0 };
    e.n++;
    if (c.dropped) e.dropped++;
    binned.set(k, e);
  }
  charts.push({
    id: 'drops', title: 'Drop rate by position within the routing group',
    note: `${r.groupSize} tokens per group in ${bins} bins; with drop_policy position the late ` +
      `tokens are dropped first.`,
    spec: {
      width: 600, height: 220,
      data: { values: [...binned.values()].map((b) =>
        ({ layer: `layer ${b.layer}`, position: Math.round((b.bin * r.groupSize) / bins),
          drop_rate: b.dropped / b.n })) },
      mark: { type: 'line', point: true, tooltip: true },
      encoding: { x: { field: 'position', type: 'quantitative', title: 'position in group' },
        y: { field: 'drop_rate', type: 'quantitative', title: 'dropped fraction' },
        color: { field: 'layer', type: 'nominal' } },
    },
  });
  const classes: CharClass[] = ['letter', 'space', 'newline', 'punctuation', 'digit or other'];
  const tables: Table[] = Array.from({ length: r.layers }, (_, l) => {
    const mine = r.chars.filter((c) => c.layer === l);
    return {
      title: `Switch layer ${l}: where each class of character goes (% of the class's tokens, first choice)`,
      columns: ['class', 'tokens', ...Array.from({ length: r.experts }, (_, e) => `expert ${e}`), 'dropped %'],
      rows: classes.map((cls) => {
        const of = mine.filter((c) => c.cls === cls);
        const pct = (n: number) => (of.length > 0 ? +((100 * n) / of.length).toFixed(1) : 0);
        return [cls, of.length, ...Array.from({ length: r.experts },
          (_, e) => pct(of.filter((c) => c.expert === e).length)), pct(of.filter((c) => c.dropped).length)];
      }),
    };
  });
  const tokens = r.chars.filter((c) => c.layer === 0).length;
  const dropped = r.chars.filter((c) => c.dropped).length;
  writeFileSync(opts.out, htmlPage({
    title: `switch-sim inspect: ${opts.checkpoint}`,
    intro: [
      `${tokens} characters routed at eval capacity factor ${r.capacityFactor} (${r.experts} experts, ${r.layers} ` +
        `Switch layers); ${dropped} token-layer routings dropped.`,
      ...(r.chars[0] && r.chars[0].experts.length > 1
        ? [`Each character's ${r.chars[0].experts.length} experts spanned ` +
          `${(r.chars.reduce((a, c) => a + new Set(c.groups).size, 0) / r.chars.length).toFixed(2)} expert groups ` +
          `(devices) on average; hover a character for its experts and groups.`]
        : []),
    ],
    charts, tables,
  }));
  return { file: opts.out, dropped, tokens };
}
