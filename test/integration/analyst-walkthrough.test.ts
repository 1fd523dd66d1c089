// The analyst's walk-through of the README (issue 20): a week of recorded events with their review
// outcomes, three candidate thresholds swept with precision and the confirmed cases lost (text and
// HTML), the winner run in shadow on live traffic, then shipped with a reload. Real Kafka,
// registry and Redis; each step through the CLI or the running processor as an analyst uses it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ActivityEvent, ReviewOutcome } from '../../src/domain/events.js';
import type { ReviewFlag } from '../../src/domain/flags.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { HOUR } from '../../src/scenarios/reference.js';
import { replay, type ReplayItem } from '../../src/tools/replay.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';
import { Harness } from '../support/pipeline.js';
import { loginsFirst, onePartition, sharedGroup } from '../support/stories.js';

const dir = mkdtempSync(join(tmpdir(), 'fairflag-walkthrough-'));
const env = isolatedEnv('walkthrough', endpoints(), 't');
const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), ...args], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

const items = (events: ActivityEvent[]) =>
  events.map((e, i): ReplayItem => ({ where: `line ${i + 1}`, family: e.family, record: e.event }));
const essence = (f: ReviewFlag) => [f.flagId, f.revision, f.accountId, f.severity, f.score];
const accounts = (flags: ReviewFlag[]) => [...new Set(flags.map((f) => f.accountId))].sort();

let h: Harness | undefined;
afterAll(async () => {
  await h?.stop();
});

describe("the analyst's walk-through", () => {
  it('a labelled week, three thresholds swept, the winner in shadow on live traffic, then shipped with a reload', async () => {
    // 1. a recorded week: two groups sharing an address and a card; the reviewers cleared the
    //    smaller group (a household) and confirmed the larger group's last three (a ring)
    const start = Date.now() - 6 * HOUR;
    const week = loginsFirst(
      onePartition([
        ...sharedGroup('wa', 5, '89.160.20.141', start),
        ...sharedGroup('wb', 8, '89.160.20.142', start + HOUR),
      ]),
    );
    const recorded = week.flat();
    const production = await replay({ loaded: loadConfig({ env }), items: items(recorded) });
    const flagged = [...production.finalFlags.values()];
    const ring = accounts(flagged)
      .filter((a) => a.startsWith('acct-wb'))
      .slice(-3);
    expect(ring).toHaveLength(3);
    const outcomes: ReviewOutcome[] = flagged.map((f, i) => ({
      outcomeId: `wt-o${i}`,
      flagId: f.flagId,
      accountId: f.accountId,
      outcome: ring.includes(f.accountId) ? 'CONFIRMED' : 'CLEARED',
      noteCategory: ring.includes(f.accountId) ? 'fraud-confirmed' : 'shared-household',
      decidedAt: start + 3 * HOUR,
    }));
    const file = join(dir, 'week.ndjson');
    writeFileSync(
      file,
      [...recorded, ...outcomes.map((event) => ({ family: 'review_outcome', event }))]
        .map((l) => JSON.stringify(l))
        .join('\n') + '\n',
    );

    // 2. three candidate thresholds: precision and the confirmed cases each would lose
    const setting = 'signals.ip.shared_by_accounts.threshold';
    const html = join(dir, 'sweep.html');
    const sweep = cli([
      'sweep',
      file,
      '--setting',
      setting,
      '--values',
      '5,6,7',
      '--json',
      '--html',
      html,
      '--no-progress',
    ]);
    expect(sweep.status, sweep.stderr).toBe(0);
    const points = (
      JSON.parse(sweep.stdout) as {
        points: { value: number; labels: { precision: number | null; confirmedLost: string[] } }[];
      }
    ).points;
    // the winner: the best precision that loses no confirmed case
    const keeps = points.filter((p) => p.labels.confirmedLost.length === 0);
    const winner = keeps.sort((a, b) => (b.labels.precision ?? -1) - (a.labels.precision ?? -1))[0]!;
    expect(winner.value).toBe(6);
    expect(winner.labels.precision).toBe(1);
    expect(points.find((p) => p.value === 7)!.labels.confirmedLost.length).toBeGreaterThan(0);
    expect(existsSync(html) && readFileSync(html, 'utf8')).toContain('"id":"sweep"');
    const text = cli(['sweep', file, '--setting', setting, '--values', '5,6,7', '--no-progress']);
    expect(text.stdout).toMatch(/^ {2}6 +\d+ .* 100% +0$/m);

    // 3. the winner in shadow on live traffic
    const candidate = join(dir, 'candidate.yaml');
    writeFileSync(candidate, `signals:\n  ip:\n    shared_by_accounts:\n      threshold: ${winner.value}\n`);
    const live = join(dir, 'live.yaml');
    writeFileSync(live, `shadow:\n  candidateFile: ${candidate}\n`);
    h = await new Harness(loadConfig({ env, file: live }), { reloadWith: { env, file: live } }).start();
    const today = loginsFirst(onePartition(sharedGroup('wc', 8, '89.160.20.143', Date.now() - 2 * HOUR)));
    await h.publishPhases(today);
    const underCandidate = await replay({
      loaded: loadConfig({ env, file: candidate }),
      items: items(today.flat()),
    });
    expect((await h.shadowFlags()).map(essence).sort()).toEqual(underCandidate.flags.map(essence).sort());
    const report = cli(['shadow-report', '--since', '1h', '--json']);
    expect(report.status, report.stderr).toBe(1);
    const stops = (JSON.parse(report.stdout) as { removed: { accountId: string }[] }).removed;
    expect(stops.length).toBeGreaterThan(0);

    // 4. ship it: the winner into the live config, the shadow off, one reload, no restart
    writeFileSync(
      live,
      `signals:\n  ip:\n    shared_by_accounts:\n      threshold: ${winner.value}\nshadow:\n  candidateFile: null\n`,
    );
    expect(h.proc.reload()).toMatchObject({ applied: true });
    const liveBefore = (await h.flags()).length;
    const tomorrow = loginsFirst(onePartition(sharedGroup('wd', 8, '89.160.20.144', Date.now() - HOUR)));
    await h.publishPhases(tomorrow);
    const shipped = (await h.flags()).slice(liveBefore);
    const expected = await replay({
      loaded: loadConfig({ env, file: candidate }),
      items: items(tomorrow.flat()),
    });
    expect(accounts(shipped)).toEqual(accounts(expected.flags));
    expect(accounts(shipped).length).toBeGreaterThan(0);
  });
});
