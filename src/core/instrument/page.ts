import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Self-contained report pages: Vega-Lite charts compiled to Vega here, rendered in the page by the
 * Vega runtime inlined into it, so a page opens offline and fetches nothing. Profiles, sweeps and
 * simulations share it; `chartSvg` renders the same charts to SVG files (for papers).
 */
export interface Chart {
  id: string;
  title: string;
  /** a sentence under the title: what the chart shows */
  note?: string;
  spec: TopLevelSpec;
}

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
}

export interface Page {
  title: string;
  /** paragraphs under the title */
  intro?: string[];
  charts: Chart[];
  tables?: Table[];
}

const require = createRequire(import.meta.url);
let runtime: string | undefined;

/** The Vega runtime (UMD, about 0.5 MB), read once from the installed package. */
function vegaRuntime(): string {
  runtime ??= readFileSync(join(dirname(require.resolve('vega/vega-schema.json')), 'vega.min.js'), 'utf8');
  return runtime;
}

export const toVega = (spec: TopLevelSpec): vega.Spec => compile(spec).spec;

/** A chart as an SVG document, rendered in Node without a browser. */
export async function chartSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(toVega(spec)), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** JSON that can sit inside a <script> element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

function tableHtml(t: Table): string {
  const head = t.columns.map((c) => `<th>${escape(c)}</th>`).join('');
  const rows = t.rows.map((r) =>
    `<tr>${r.map((v) => `<td>${escape(typeof v === 'number' ? String(+v.toPrecision(6)) : v)}</td>`).join('')}</tr>`)
      .join('\n');
  return `<h2>${escape(t.title)}</h2>\n` +
    `<table class="sortable"><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

export function htmlPage(page: Page): string {
  const specs = Object.fromEntries(page.charts.map((c) => [c.id, toVega(c.spec)]));
  const sections = page.charts.map((c) =>
    `<section><h2>${escape(c.title)}</h2>${c.note ? `<p class="note">${escape(c.note)}</p>` : ''}<div class="chart" ` +
      `id="${c.id}"></div></section>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(page.title)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 16px; margin-top: 28px; } .note { color: #555; margin: 4px 0 8px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; } th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; cursor: pointer; } td:first-child, th:first-child { text-align: left; }
</style>
<script>${vegaRuntime()}</script>
</head><body>
<h1>${escape(page.title)}</h1>
${(page.intro ?? []).map((p) => `<p>${escape(p)}</p>`).join('\n')}
${sections}
${(page.tables ?? []).map(tableHtml).join('\n')}
<script>
const specs = ${scriptJson(specs)};
window.chartsRendered = Promise.all(Object.entries(specs).map(([id, spec]) =>
  new vega.View(vega.parse(spec), { renderer: 'svg', container: '#' + id, hover: true }).runAsync()));
// sortable tables: click a header
for (const th of document.querySelectorAll('table.sortable th')) {
  th.addEventListener('click', () => {
    const table = th.closest('table'); const i = [...th.parentNode.children].indexOf(th);
    const rows = [...table.tBodies[0].rows]; const dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir > 0 ? 'asc' : 'desc';
    const key = (r) => { const t = r.cells[i].textContent; const n = Number(t); return t !== '' && !Number.isNaN(n) ? n : t; };
    rows.sort((a, b) => { const x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * dir; });
    for (const r of rows) table.tBodies[0].appendChild(r);
  });
}
</script>
</body></html>
`;
}
