// Issue 18's stories through the live pipeline on the real Kafka, registry and Redis: what the
// flag contract promises reviewers and members, end to end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, travellingFreelancer, type Scenario } from '../../src/scenarios/reference.js';
import { isolatedConfig } from '../support/config.js';
import { Harness } from '../support/pipeline.js';
import { AWAY, accountSharing, newAgency, takeoverAttempt, vpnTrip } from '../support/stories.js';
import { scoreAccount } from '../../src/engine/engine.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { explainStored } from '../../src/tools/explain.js';
import { formatExplanation } from '../../src/tools/format.js';

describe('issue 18 through Kafka', () => {
  let h: Harness;
  const run = Date.now().toString(36);
  const t0 = Date.now() - 4 * DAY;
  const shared = `acct-sharing-${run}`;
  const once = `acct-sharing-once-${run}`;
  const agency = `acct-agency-${run}`;
  const client = `acct-agency-client-${run}`;

  beforeAll(async () => {
    h = await new Harness(isolatedConfig('promises')).start();
    // one phase per day, as the days would arrive
    const sharing = accountSharing(shared, t0, 3);
    const single = accountSharing(once, t0 + HOUR, 1);
    // the agency's account history first: another topic than its contract events
    const scam = newAgency(agency, client, Date.now() - 2 * HOUR);
    const [history, contracts] = [
      scam.filter((e) => e.family === 'account'),
      scam.filter((e) => e.family === 'contract'),
    ];
    await h.publishPhases([
      [...sharing.slice(0, 2), ...single, ...history],
      [...sharing.slice(2, 4), ...contracts],
      sharing.slice(4),
    ]);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('1. account sharing on three days reaches review: one identity flag with each episode as evidence; one day alone does not', async () => {
    const flags = await h.flags();
    const mine = flags.filter((f) => f.accountId === shared);
    expect(mine.map((f) => [f.reviewQueue, f.severity, f.action])).toEqual([['identity', 'low', 'REVIEW']]);
    const sharing = mine[0]!.signals.find((s) => s.id === 'login.concurrent_distant_sessions')!;
    expect(sharing.observed).toBe(3);
    expect(sharing.summary).toMatch(/^3 episode\(s\) in 30d of sessions open at once far apart/);
    const events = accountSharing(shared, t0, 3);
    expect(sharing.evidenceEventIds.sort()).toEqual(
      [events[1]!, events[3]!, events[4]!, events[5]!].map((e) => e.event.eventId).sort(),
    );
    expect(mine[0]!.notice.category).toBe('Identity');
    // no creation event seen: the flag and explain say the history is unknown, not absent
    expect(mine[0]!.historyUnknown).toBe(true);
    const e = await explainStored(
      shared,
      h.proc.backend,
      h.proc.activePolicy,
      await GeoIp.open(h.config.maxmind),
    );
    expect(e.historyUnknown).toBe(true);
    expect(formatExplanation(e)).toMatch(
      /mitigations: none\n {4}history unknown to fairflag: no account creation event seen/,
    );
    expect(flags.filter((f) => f.accountId === once)).toEqual([]);
  });

  it('3. a brand-new verified agency disputed for non-delivery after its first milestone is reviewed; verified identity is not applicable to contracts', async () => {
    const mine = (await h.flags()).filter((f) => f.accountId === agency);
    expect(mine.map((f) => [f.reviewQueue, f.severity])).toEqual([['contracts', 'medium']]);
    expect(mine[0]!.signals.map((s) => s.id)).toEqual(['contract.first_payment_then_dispute']);
    expect(mine[0]!.mitigations).toEqual([]);
    expect(mine[0]!.notApplicableMitigations.map((m) => m.id)).toEqual(['verified_identity']);
    expect(mine[0]!.historyUnknown).toBe(false);
    expect(mine[0]!.notApplicableMitigations[0]!.reason).toMatch(/says nothing about contracts concerns/);
    expect((await h.flags()).filter((f) => f.accountId === client)).toEqual([]);
  });

  it('2. cleared stays cleared: the same pattern the next morning and a week later raises nothing, after the cooldown it does; a takeover during the cooldown does', async () => {
    const start = Date.now() - 43 * DAY;
    const x = travellingFreelancer(start, `cleared-${run}`);
    const y = travellingFreelancer(start, `takeover-${run}`);
    const trip = (s: Scenario, days: number, away: string, n: number) =>
      vpnTrip(s.accountId, start + days * DAY + 8 * HOUR, away, n);
    const flagsOf = async (s: Scenario) => (await h.flags()).filter((f) => f.accountId === s.accountId);
    await h.publishPhases([
      [...x.phases[0]!, ...y.phases[0]!],
      [...x.phases[1]!, ...y.phases[1]!],
      [...trip(x, 10, AWAY.changchun, 1), ...trip(y, 10, AWAY.changchun, 1)],
    ]);
    const [fx] = await flagsOf(x);
    const [fy] = await flagsOf(y);
    for (const f of [fx, fy]) expect([f?.reviewQueue, f?.severity]).toEqual(['account_security', 'medium']);

    const decidedAt = start + 10 * DAY + 12 * HOUR;
    await h.publishRaw(
      h.topics.reviewOutcomes,
      await Promise.all(
        [fx!, fy!].map(async (f) => ({
          key: f.accountId,
          value: await h.proc.codec.encode('reviewOutcome', {
            outcomeId: `cleared-${f.flagId}`,
            flagId: f.flagId,
            accountId: f.accountId,
            outcome: 'CLEARED',
            noteCategory: 'travel-confirmed',
            decidedAt,
          }),
        })),
      ),
    );
    await h.settle();
    await h.publishPhases([
      [...trip(x, 11, AWAY.milton, 2), ...takeoverAttempt(y.accountId, start + 12 * DAY + 3 * HOUR)],
      trip(x, 17, AWAY.manila, 3),
    ]);
    expect(await flagsOf(x)).toHaveLength(1);
    const stored = await h.proc.storedAccount(x.accountId);
    const [decision] = scoreAccount(stored, stored.watermark, h.proc.activePolicy);
    expect(decision).toMatchObject({ queue: 'account_security', clearedByReview: true });
    expect(decision!.mitigations.find((m) => m.id === 'cleared_review')!.effect).toMatch(
      /^a review cleared this pattern/,
    );

    const takeover = await flagsOf(y);
    expect(takeover).toHaveLength(2);
    expect(takeover[1]!.flagId).not.toBe(fy!.flagId);
    expect(takeover[1]!.signals.map((s) => s.id)).toContain('login.failed_burst');
    expect(takeover[1]!.mitigations.find((m) => m.id === 'cleared_review')!.effect).toMatch(
      /related pattern .*new here: login\.failed_burst/,
    );

    // the cooldown ends 30 days after the decision: the same pattern is judged normally again
    await h.publishPhases([trip(x, 41, AWAY.boxford, 4)]);
    const after = await flagsOf(x);
    expect(after).toHaveLength(2);
    expect(after[1]!.flagId).not.toBe(fx!.flagId);
    expect(after[1]!.revision).toBe(1);
  });
});
