import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../core/config/errors.js';
import type { Cluster } from '../../sim/cluster.js';
import type { Workload } from '../../sim/workload.js';

/** The options of `simulate --search`. */
export interface SearchFlags {
  space: string[];
  top?: number;
  html?: string;
  threads?: number;
  json?: boolean;
  set: string[];
  megatronArgs?: string;
}

/** The flags that only a search reads, given without --search: one line, exit 2. */
export function refuseSearchFlags(o: Pick<SearchFlags, 'space' | 'top' | 'html' | 'threads'>): void {
  const given = [o.space.length > 0 && '--space', o.top !== undefined && '--top', o.html !== undefined && '--html',
    o.threads !== undefined && '--threads'].find((f) => f);
  if (given) throw new ConfigError(`--space, --top, --html and --threads need --search (got ${given})`);
}

/**
 * `simulate --search`: every plan Megatron-Core accepts for the workload's model on the cluster, pinned by what
 * --set and --megatron-args name and narrowed by --space; prints the top plans, writes search.html (--html FILE or
 * in `dir`), and with --json ends with the result as one line.
 */
export async function runSearch(o: SearchFlags, cluster: Cluster, w: Workload, dir: () => string): Promise<void> {
  const { narrowing, parseSpace, pinnedKeys } = await import('../../sim/search/narrow.js');
  const { searchPlans } = await import('../../sim/search/search.js');
  const { searchJson, searchLines } = await import('../../sim/search/report.js');
  const { searchPage } = await import('../../sim/search/page.js');
  if (o.top !== undefined && !Number.isInteger(o.top)) throw new ConfigError(`--top must be an integer >= 0 (got ${o.top})`);
  const narrow = narrowing(parseSpace(o.space), pinnedKeys(o.set, o.megatronArgs), w.config.plan);
  const top = o.top ?? 10;
  const r = await searchPlans(cluster, w, narrow, { threads: o.threads });
  for (const line of searchLines(r, top)) console.log(line);
  const html = o.html ?? join(dir(), 'search.html');
  mkdirSync(dirname(html), { recursive: true });
  writeFileSync(html, searchPage(r, top));
  console.log(`wrote ${html}`);
  if (o.json) console.log(JSON.stringify(searchJson(r, top)));
}
