// Opens an HTML report in the system's Chromium (headless, driven by playwright-core) the way an
// analyst would, from file://, and reports what a reader would notice: any request that leaves
// the file, console errors, charts that did not draw, links that lead nowhere.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium; CI installs it (.ci/run). */
export const CHROMIUM = process.env['FAIRFLAG_CHROMIUM'] ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set FAIRFLAG_CHROMIUM)`);
  // --no-sandbox: CI and the developers' machines run the tests as root
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

export interface ChartState {
  id: string;
  rendered: boolean;
  points: number;
}

export interface OpenedReport {
  page: Page;
  /** Every request for anything but a file:// URL (each one blocked). */
  external: string[];
  consoleErrors: string[];
  charts: ChartState[];
  /** In-page links (#...) with no element of that id. */
  brokenLinks: string[];
  /** How many in-page links there are. */
  links: number;
}

export async function openReport(browser: Browser, file: string, screenshot: string): Promise<OpenedReport> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const external: string[] = [];
  const consoleErrors: string[] = [];
  await page.route(
    (url) => url.protocol !== 'file:',
    async (route) => {
      external.push(route.request().url());
      await route.abort('blockedbyclient');
    },
  );
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  // charts draw synchronously on load (no animation); wait for every figure to say it was drawn
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('figure[data-chart]')].every(
        (f) => (f as HTMLElement).dataset['rendered'] === 'true',
      ),
    undefined,
    { timeout: 15_000 },
  );
  const charts = await page.$$eval('figure[data-chart]', (figs) =>
    figs.map((f) => ({
      id: (f as HTMLElement).dataset['chart'] ?? '',
      rendered: (f as HTMLElement).dataset['rendered'] === 'true',
      points: Number((f as HTMLElement).dataset['points'] ?? 0),
    })),
  );
  const { links, broken } = await page.$$eval('a[href^="#"]', (as) => {
    const hrefs = as.map((a) => a.getAttribute('href')!.slice(1));
    return {
      links: hrefs.length,
      broken: hrefs.filter((id) => !document.getElementById(decodeURIComponent(id))),
    };
  });
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  return { page, external, consoleErrors, charts, brokenLinks: broken, links };
}
