// HTML reports (issue 20): replay, diff and explain write one self-contained file with --html.
// Each is made through the CLI on real Redis (the replay namespace; explain reads one kept with
// --keep), then opened from file:// in Debian's Chromium: nothing may be fetched, nothing may log
// an error, every chart must draw its data, every link to a timeline must lead to one, and the
// hostile strings in the input must show as text. Screenshots go to test-output/reports/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReviewOutcome } from '../../src/domain/events.js';
import { RedisStateBackend } from '../../src/features/state-backend.js';
import { chartFigure, lineChart } from '../../src/report/charts.js';
import { page } from '../../src/report/html.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { HOUR } from '../../src/scenarios/reference.js';
import { replay, type ReplayItem } from '../../src/tools/replay.js';
import { launchBrowser, openReport, type OpenedReport } from '../support/browser.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';
import { sharedGroup } from '../support/stories.js';

const HOSTILE = '<img src=x onerror=alert(1)>';
const dir = mkdtempSync(join(tmpdir(), 'fairflag-reports-'));
const shots = join(PROJECT_ROOT, 'test-output', 'reports');
const env = { ...process.env, ...isolatedEnv('reports', endpoints(), 'r') };
const cli = (args: string[], childEnv: NodeJS.ProcessEnv = env) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), ...args], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    env: childEnv,
  });

const start = Date.now() - 6 * HOUR;
// five accounts on one personal IP: acct-rp-3 and acct-rp-4 reach the shared-IP threshold
const events = sharedGroup('rp', 5, '89.160.20.126', start);
let file = '';
let browser: Browser;
const ndjson = (lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';

/** The chart specs the page was given, to compare with what it drew. */
async function specsOf(r: OpenedReport) {
  const text = await r.page.$eval('#fairflag-charts', (s) => s.textContent ?? '');
  return JSON.parse(text) as { id: string; series: { values: (number | null)[] }[] }[];
}

/** What every report must hold to: opened offline without errors, charts drawn with their data. */
async function expectSound(r: OpenedReport, charts: string[]) {
  expect(r.external).toEqual([]);
  expect(r.consoleErrors).toEqual([]);
  expect(r.charts.map((c) => c.id).sort()).toEqual([...charts].sort());
  const specs = await specsOf(r);
  for (const c of r.charts) {
    const spec = specs.find((s) => s.id === c.id)!;
    const values = spec.series.flatMap((s) => s.values).filter((v) => v !== null).length;
    expect(c.rendered, c.id).toBe(true);
    expect(values, c.id).toBeGreaterThan(0);
    expect(c.points, c.id).toBe(values);
  }
  expect(r.brokenLinks).toEqual([]);
  // the hostile strings of the input are text on the page, not elements
  expect(await r.page.locator('img').count()).toBe(0);
}

beforeAll(async () => {
  browser = await launchBrowser();
  const raised = await replay({
    loaded: loadConfig({ env }),
    items: events.map((e, i): ReplayItem => ({ where: `line ${i + 1}`, family: e.family, record: e.event })),
  });
  const flagOf = (acct: string) => [...raised.finalFlags.values()].find((f) => f.accountId === acct)!;
  const decided = (acct: string, outcome: ReviewOutcome['outcome'], note: string, n: number) => ({
    family: 'review_outcome',
    event: {
      outcomeId: `rp-o${n}`,
      flagId: flagOf(acct).flagId,
      accountId: acct,
      outcome,
      noteCategory: note,
      decidedAt: start + 2 * HOUR,
    } satisfies ReviewOutcome,
  });
  file = join(dir, 'week.ndjson');
  writeFileSync(
    file,
    ndjson([
      ...events,
      // refused by validation: its detail, with the id, is listed on the page
      { ...events[0]!, event: { ...events[0]!.event, eventId: 'rp-bad', accountId: HOSTILE } },
      decided('acct-rp-3', 'CONFIRMED', HOSTILE, 1),
      decided('acct-rp-4', 'CLEARED', 'shared-household', 2),
    ]),
  );
  mkdirSync(shots, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

describe('HTML reports in a browser', () => {
  it('replay --html: score distribution with the threshold, fires and precision per signal, timelines', async () => {
    const out = join(dir, 'replay.html');
    const r = cli(['replay', file, '--html', out, '--no-progress']);
    // one line refused (the hostile account id): exit 1, and the report still written
    expect(r.status, r.stderr).toBe(1);
    expect(existsSync(out)).toBe(true);
    const page = await openReport(browser, out, join(shots, 'replay.png'));
    await expectSound(page, ['scores-identity', 'fires', 'precision']);
    const p = page.page;
    // the flagged accounts, each linked to its timeline
    const links = p.locator('table.flags a.account');
    expect((await links.allTextContents()).sort()).toEqual(['acct-rp-3', 'acct-rp-4']);
    await links.filter({ hasText: 'acct-rp-3' }).click();
    const target = p.locator('section.timeline:target');
    expect(await target.getAttribute('data-account')).toBe('acct-rp-3');
    // its timeline: its events, the signal with its evidence marked, the flag and the outcome
    expect(await target.locator('tr.kind-event').count()).toBeGreaterThanOrEqual(2);
    expect(await target.locator('tr.evidence').count()).toBeGreaterThanOrEqual(1);
    expect(await target.locator('tr.kind-signal').allTextContents()).toContainEqual(
      expect.stringContaining('ip.shared_by_accounts'),
    );
    expect(await target.locator('tr.kind-flag').count()).toBeGreaterThanOrEqual(1);
    const outcome = await target.locator('tr.kind-outcome').textContent();
    expect(outcome).toContain('CONFIRMED');
    expect(outcome).toContain(HOSTILE);
    // the refused line, its hostile id shown as text
    expect(await p.locator('body').textContent()).toContain(HOSTILE);
    // the threshold line is drawn in the score histogram: the marker is in the spec at 2
    const specs = await specsOf(page);
    const scores = specs.find((s) => s.id === 'scores-identity') as unknown as {
      marker: { label: string };
      series: { name: string; values: number[] }[];
    };
    expect(scores.marker.label).toBe('review at 2');
    // acct-rp-2 is scored (one signal) but not reviewed; acct-rp-3 and -4 went to review
    expect(scores.series.map((s) => [s.name, s.values.reduce((a, b) => a + b, 0)])).toEqual([
      ['not reviewed', 1],
      ['went to review', 2],
    ]);
    await p.close();
  });

  it('diff --html: fires and precision before and after, changed accounts linked to their timelines', async () => {
    const candidate = join(dir, 'raise.yaml');
    writeFileSync(candidate, 'signals:\n  ip:\n    shared_by_accounts:\n      threshold: 6\n');
    const out = join(dir, 'diff.html');
    const r = cli(['diff', file, '--candidate', candidate, '--html', out, '--no-progress']);
    expect(r.status, r.stderr).toBe(1); // flags change
    const page = await openReport(browser, out, join(shots, 'diff.png'));
    await expectSound(page, ['fires', 'precision']);
    const p = page.page;
    const rows = p.locator('table.changes tbody tr');
    expect(await rows.count()).toBe(2);
    const first = await rows.first().textContent();
    expect(first).toContain('stops reviewing');
    expect(first).toMatch(
      /acct-rp-3.*identity.*2\.33 → –.*low → none.*CONFIRMED.*ip\.shared_by_accounts no longer fires/s,
    );
    await p.locator('table.changes a.account', { hasText: 'acct-rp-4' }).click();
    const target = p.locator('section.timeline:target');
    expect(await target.getAttribute('data-account')).toBe('acct-rp-4');
    // the flag under the base config is on the timeline, tagged as such; the candidate raised none
    expect(await target.locator('tr.kind-flag').allTextContents()).toEqual([expect.stringContaining('base')]);
    // before and after: the signal no longer fires under the candidate
    const specs = await specsOf(page);
    const fires = specs.find((s) => s.id === 'fires') as unknown as {
      labels: string[];
      series: { name: string; values: number[] }[];
    };
    const i = fires.labels.indexOf('ip.shared_by_accounts');
    expect(fires.series.map((s) => [s.name, s.values[i]])).toEqual([
      ['base', 2],
      ['candidate', 0],
    ]);
    await p.close();
  });

  it('explain --html: the account timeline, its signals against their thresholds and its score per queue', async () => {
    // the replayed state, kept, is the feature store explain reads
    const kept = cli(['replay', file, '--keep', '--json', '--no-progress']);
    const { namespace } = JSON.parse(kept.stdout) as { namespace: string };
    const redis = new Redis(env.FAIRFLAG_REDIS_URL!, { lazyConnect: true });
    await redis.connect();
    try {
      const out = join(dir, 'explain.html');
      const r = cli(['explain', 'acct-rp-3', '--namespace', namespace, '--html', out]);
      expect(r.status, r.stderr).toBe(0);
      const page = await openReport(browser, out, join(shots, 'explain.png'));
      await expectSound(page, ['thresholds', 'score']);
      const p = page.page;
      const timeline = p.locator('section.timeline');
      expect(await timeline.getAttribute('data-account')).toBe('acct-rp-3');
      const signals = await timeline.locator('tr.kind-signal').allTextContents();
      expect(signals).toContainEqual(expect.stringMatching(/ip\.shared_by_accounts.*evidence: rp-l3/s));
      expect(signals).toContainEqual(expect.stringMatching(/payment\.shared_instrument.*evidence: rp-p3/s));
      // the confirmed flag is closed; the score still reaches review
      expect(await timeline.locator('tr.kind-flag').count()).toBe(0);
      expect(await p.locator('table.decisions').textContent()).toMatch(/identity\s*2\.33\s*2\s*review, low/);
      const specs = await specsOf(page);
      expect(JSON.stringify(specs.find((s) => s.id === 'score'))).toContain('review at 2');
      await p.close();

      // the cleared account: the reviewer's decision is on its timeline, with the cooldown's end
      const cleared = join(dir, 'explain-cleared.html');
      expect(cli(['explain', 'acct-rp-4', '--namespace', namespace, '--html', cleared]).status).toBe(0);
      const c = await openReport(browser, cleared, join(shots, 'explain-cleared.png'));
      await expectSound(c, ['thresholds']);
      expect(await c.page.locator('section.timeline tr.kind-outcome').textContent()).toContain(
        'a reviewer cleared identity: ip + payment',
      );
      await c.page.close();

      // an account nobody knows, named with markup: a page that says so, the name as text
      const hostile = join(dir, 'explain-hostile.html');
      const h = cli(['explain', HOSTILE, '--namespace', namespace, '--html', hostile]);
      expect(h.status).toBe(1);
      const unknown = await openReport(browser, hostile, join(shots, 'explain-unknown.png'));
      await expectSound(unknown, []);
      expect(await unknown.page.locator('body').textContent()).toContain(
        `Nothing remembered about ${HOSTILE}`,
      );
      await unknown.page.close();
    } finally {
      await new RedisStateBackend(redis, namespace).dropNamespace();
      redis.disconnect();
    }
  });

  it('sweep --html: the curve of flags, confirmed lost and precision by value, today marked, and the table', async () => {
    const out = join(dir, 'sweep.html');
    const r = cli([
      'sweep',
      file,
      '--setting',
      'signals.ip.shared_by_accounts.threshold',
      '--values',
      '3:6:1',
      '--html',
      out,
      '--no-progress',
    ]);
    expect(r.status, r.stderr).toBe(1); // the line with the hostile id is refused, the rest swept
    const page = await openReport(browser, out, join(shots, 'sweep-report.png'));
    await expectSound(page, ['sweep']);
    const specs = (await specsOf(page)) as unknown as {
      id: string;
      labels: number[];
      series: { name: string; values: (number | null)[] }[];
      marker?: { at: number };
    }[];
    const curve = specs.find((s) => s.id === 'sweep')!;
    expect(curve.labels).toEqual([3, 4, 5, 6]);
    expect(curve.marker?.at).toBe(4);
    const byName = Object.fromEntries(curve.series.map((x) => [x.name, x.values]));
    expect(byName['flags']).toEqual([3, 2, 1, 0]);
    expect(byName['confirmed lost']).toEqual([0, 0, 1, 1]);
    expect(byName['precision']).toEqual([0.5, 0.5, 0, null]);
    const rows = await page.page.locator('table tbody tr').allTextContents();
    expect(rows).toHaveLength(4);
    expect(rows[1]!.trim()).toMatch(/^4 \(today\)/);
    expect(rows[2]).toContain('acct-rp-3 / identity');
    await page.page.close();
  });

  it('the line chart helper (for a sweep curve) draws both axes in the browser', async () => {
    const spec = lineChart({
      id: 'sweep',
      title: 'Flags and precision by threshold',
      x: { title: 'signals.ip.shared_by_accounts.threshold', values: [3, 4, 5, 6] },
      series: [
        { name: 'flags', values: [12, 9, 4, 2] },
        { name: 'precision', values: [0.4, 0.5, null, 1], axis: 'y2' },
      ],
      y: { title: 'flags' },
      y2: { title: 'precision', percent: true, max: 1 },
      marker: { at: 4, label: 'current' },
    });
    const out = join(dir, 'sweep.html');
    writeFileSync(out, page({ title: 'sweep', subtitle: HOSTILE, body: chartFigure(spec), charts: [spec] }));
    const opened = await openReport(browser, out, join(shots, 'sweep.png'));
    await expectSound(opened, ['sweep']);
    expect(opened.charts[0]!.points).toBe(7); // the null is a gap, not a point
    await opened.page.close();
  });

  it('a report that cannot be written is an error naming the file', () => {
    const r = cli(['explain', 'acct-rp-3', '--html', join(dir, 'no-such-dir', 'x.html')]);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/--html .*no-such-dir\/x\.html: cannot write \(ENOENT\)/);
  });
});
