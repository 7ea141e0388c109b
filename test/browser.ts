import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (installed by .ci/run); never a browser download. */
export const CHROMIUM = process.env.SWITCH_SIM_CHROMIUM ?? '/usr/bin/chromium';

export interface PageCheck {
  /** per chart container id: how many SVG marks it drew */
  marks: Record<string, number>;
  consoleErrors: string[];
  /** every request the page made other than the page itself */
  requests: string[];
}

/**
 * Opens a self-contained HTML page from disk in headless Chromium, waits for its charts, and reports
 * what each drew, any console error and any network request (there should be none).
 */
export async function openPage(file: string, screenshot?: string): Promise<PageCheck> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    const url = `file://${file}`;
    await page.route('**/*', (route) => {
      if (route.request().url() !== url) {
        requests.push(route.request().url());
        return route.abort();
      }
      return route.continue();
    });
    await page.goto(url);
    await page.evaluate(async () => { await (window as unknown as { chartsRendered: Promise<unknown> }).chartsRendered; return true; });
    const marks = await page.evaluate(() => Object.fromEntries(Array.from(document.querySelectorAll('.chart')).map((c) =>
      [c.id, c.querySelectorAll('svg .mark-rect path, svg .mark-rect rect, svg .mark-line path, svg .mark-symbol path, svg .mark-area path, svg .mark-text text').length])));
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    return { marks, consoleErrors, requests };
  } finally {
    await browser.close();
  }
}

/** The page's checks in one place: exactly these charts, each drew marks, no console error, no request. */
export async function assertPageRenders(t: { deepEqual(a: unknown, b: unknown): void; true(v: boolean, m?: string): void }, file: string, charts: string[]): Promise<void> {
  const page = await openPage(file);
  t.deepEqual(Object.keys(page.marks).sort(), [...charts].sort());
  for (const [id, n] of Object.entries(page.marks)) t.true(n > 0, `${id} drew ${n} marks`);
  t.deepEqual(page.consoleErrors, []);
  t.deepEqual(page.requests, []);
}
