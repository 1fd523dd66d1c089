// A shadow policy on live traffic (issue 20): a running processor evaluates a candidate config
// beside the live one on the same events. Its would-be flags go to the shadow topic, exactly those a
// replay of the same events under the candidate gives; the flag topic holds exactly the live
// config's; a reload stops the shadow without a restart. Real Kafka, registry and Redis.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReviewFlag } from '../../src/domain/flags.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { HOUR } from '../../src/scenarios/reference.js';
import { replay, type ReplayItem } from '../../src/tools/replay.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';
import { Harness } from '../support/pipeline.js';
import { loginsFirst, onePartition, sharedGroup } from '../support/stories.js';

const dir = mkdtempSync(join(tmpdir(), 'fairflag-shadow-'));
const candidate = join(dir, 'candidate.yaml');
const live = join(dir, 'live.yaml');
const env = isolatedEnv('shadow', endpoints(), 't');
const essence = (f: ReviewFlag) => ({
  flagId: f.flagId,
  revision: f.revision,
  accountId: f.accountId,
  queue: f.reviewQueue,
  severity: f.severity,
  score: f.score,
  signals: f.signals.map((s) => [s.id, s.observed, s.threshold]).sort(),
});
const sorted = (flags: ReviewFlag[]) =>
  flags.map(essence).sort((a, b) => a.flagId.localeCompare(b.flagId) || a.revision - b.revision);

let h: Harness;
beforeAll(async () => {
  // the candidate raises the shared-IP threshold from 4 to 6
  writeFileSync(candidate, 'signals:\n  ip:\n    shared_by_accounts:\n      threshold: 6\n');
  writeFileSync(live, `shadow:\n  candidateFile: ${candidate}\n`);
  h = await new Harness(loadConfig({ env, file: live }), { reloadWith: { env, file: live } }).start();
});
afterAll(async () => {
  await h?.stop();
});

describe('a shadow candidate beside the live policy', () => {
  it('the shadow topic holds exactly what a replay under the candidate gives; the flag topic is unchanged', async () => {
    const start = Date.now() - 6 * HOUR;
    // one partition, published phase by phase: the order live consumes them is the order replayed
    // (batches of several partitions consumed side by side judge shared addresses in no fixed order)
    const consumed = loginsFirst(
      onePartition([
        ...sharedGroup('sx', 5, '89.160.20.131', start),
        ...sharedGroup('sy', 8, '89.160.20.132', start + HOUR),
      ]),
    );
    await h.publishPhases(consumed);
    const items = consumed.flat().map((e, i): ReplayItem => ({
      where: `line ${i + 1}`,
      family: e.family,
      record: e.event,
    }));
    const underLive = await replay({ loaded: loadConfig({ env }), items });
    const underCandidate = await replay({ loaded: loadConfig({ env, file: candidate }), items });

    const liveFlags = await h.flags();
    const shadowFlags = await h.shadowFlags();
    expect(sorted(liveFlags)).toEqual(sorted(underLive.flags));
    expect(sorted(shadowFlags)).toEqual(sorted(underCandidate.flags));
    // the candidate really differs: fewer accounts, none from the five on the first address
    const accounts = (flags: ReviewFlag[]) => [...new Set(flags.map((f) => f.accountId))].sort();
    expect(accounts(liveFlags).filter((a) => a.startsWith('acct-sx'))).not.toEqual([]);
    expect(accounts(shadowFlags).filter((a) => a.startsWith('acct-sx'))).toEqual([]);
    expect(accounts(shadowFlags).length).toBeGreaterThan(0);
    expect(accounts(shadowFlags).length).toBeLessThan(accounts(liveFlags).length);
    const metric = await h.proc.metrics.registry.getSingleMetricAsString(
      'fairflag_shadow_flags_emitted_total',
    );
    expect(metric).toMatch(/queue="identity"/);

    // the report over the period says the same from the two topics: whom the candidate stops reviewing
    const report = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), 'shadow-report', '--since', '1h', '--json'],
      { cwd: PROJECT_ROOT, encoding: 'utf8', env: { ...process.env, ...env } },
    );
    expect(report.status, report.stderr).toBe(1);
    const r = JSON.parse(report.stdout) as { removed: { accountId: string }[]; added: unknown[] };
    const stopped = [...new Set(r.removed.map((c) => c.accountId))].sort();
    expect(stopped).toEqual(accounts(liveFlags).filter((a) => !accounts(shadowFlags).includes(a)));
    expect(r.added).toEqual([]);
  });

  it('a reload without the candidate stops the shadow, and the live policy goes on', async () => {
    writeFileSync(live, 'shadow:\n  candidateFile: null\n');
    expect(h.proc.reload()).toMatchObject({ applied: true });
    const before = (await h.shadowFlags()).length;
    const liveBefore = (await h.flags()).length;
    await h.publishPhases(
      loginsFirst(onePartition(sharedGroup('sz', 8, '89.160.20.133', Date.now() - 2 * HOUR))),
    );
    expect((await h.shadowFlags()).length).toBe(before);
    expect((await h.flags()).length).toBeGreaterThan(liveBefore);
  });

  it('a candidate that is not a valid config is refused, and the running policy stays', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'review:\n  threshold: -1\n');
    writeFileSync(live, `shadow:\n  candidateFile: ${bad}\n`);
    const r = h.proc.reload();
    expect(r.applied).toBe(false);
    expect(r.problems?.join('\n')).toMatch(/review\.threshold: expected a positive number, got -1/);
  });
});
