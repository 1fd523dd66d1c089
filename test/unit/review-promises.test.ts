// Issue 18's stories through the engine in memory (the production code path over an in-process
// state backend): what reaches review, and what does not. The same stories run through Kafka in
// test/integration/review-promises.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { GeoIp } from '../../src/enrich/geoip.js';
import { DAY, HOUR, travellingFreelancer } from '../../src/scenarios/reference.js';
import { MemoryPipeline } from '../support/engine.js';
import { shippedConfig } from '../support/snapshot.js';
import { AWAY, accountSharing, enriched, newAgency, takeoverAttempt, vpnTrip } from '../support/stories.js';
import type { ReviewFlag } from '../../src/domain/flags.js';
import { scoreAccount, type EngineInput } from '../../src/engine/engine.js';

const T0 = Date.UTC(2026, 5, 1, 8);
let geo: GeoIp;
beforeAll(async () => {
  geo = await GeoIp.open(shippedConfig().config.maxmind);
});

describe('account sharing reaches review', () => {
  it('three days of sessions open at once in Milton and Changchun: one identity flag, with every episode as evidence', async () => {
    const p = new MemoryPipeline();
    const events = enriched(accountSharing('acct-shared', T0, 3), geo, T0 + 4 * DAY);
    await p.feed(events);
    expect(p.flags.map((f) => [f.reviewQueue, f.severity])).toEqual([['identity', 'low']]);
    const f = p.flags[0]!;
    const sharing = f.signals.find((s) => s.id === 'login.concurrent_distant_sessions')!;
    expect(sharing).toMatchObject({ observed: 3, threshold: 3, window: '30d' });
    // the three Changchun logins (one episode each) and the Milton session open at the third
    expect(sharing.evidenceEventIds).toHaveLength(4);
    for (const d of [0, 1, 2]) expect(sharing.evidenceEventIds).toContain(events[2 * d + 1]!.event.eventId);
    expect(sharing.evidenceEventIds).toContain(events[4]!.event.eventId);
    expect(f.triggeringEventId).toBe(events[5]!.event.eventId);
    // fairflag saw no creation event: the flag says so, rather than reading as "no history"
    expect(f.historyUnknown).toBe(true);
  });

  it('one or two such days are not enough, and the same episode seen twice counts once', async () => {
    const p = new MemoryPipeline();
    const two = enriched(accountSharing('acct-twice', T0, 2), geo, T0 + 3 * DAY);
    await p.feed(two);
    // a second Changchun login within the same overlap on day 2: the same episode
    const again = enriched(accountSharing('acct-twice', T0, 2), geo, T0 + 3 * DAY)[3]!;
    await p.batch([
      {
        ...again,
        event: { ...again.event, eventId: 'again-1', occurredAt: again.event.occurredAt + 10 * 60_000 },
      },
    ] as typeof two);
    expect(p.flags).toEqual([]);
    const stored = await p.stored('acct-twice');
    expect([...(stored!.events.get('sharingEpisode') ?? new Map()).keys()]).toEqual([
      two[1]!.event.eventId,
      two[3]!.event.eventId,
    ]);
  });

  it('episodes older than the window no longer count', async () => {
    const p = new MemoryPipeline();
    const first = enriched(accountSharing('acct-slow', T0, 2), geo, T0 + 60 * DAY);
    const late = enriched(accountSharing('acct-slow', T0 + 31 * DAY, 1), geo, T0 + 60 * DAY).map((e) => ({
      ...e,
      event: { ...e.event, eventId: `${e.event.eventId}-later` },
    })) as typeof first;
    await p.feed([...first, ...late]);
    expect(p.flags).toEqual([]);
  });
});

describe('mitigations where they belong', () => {
  it('a brand-new verified agency disputed for non-delivery after its first milestone goes to review; verified identity is listed as not applicable', async () => {
    const p = new MemoryPipeline();
    const events = enriched(newAgency('acct-agency', 'acct-scammed', T0), geo, T0 + DAY);
    await p.feed(events);
    const mine = p.flags.filter((f) => f.accountId === 'acct-agency');
    expect(mine.map((f) => [f.reviewQueue, f.severity])).toEqual([['contracts', 'medium']]);
    const f = mine[0]!;
    expect(f.signals.map((s) => s.id)).toEqual(['contract.first_payment_then_dispute']);
    expect(f.score).toBe(4);
    expect(f.mitigations).toEqual([]);
    expect(f.notApplicableMitigations).toEqual([
      {
        id: 'verified_identity',
        reason:
          'identity verified, but it says nothing about contracts concerns (it dampens account_security, identity)',
      },
    ]);
    expect(f.historyUnknown).toBe(false);
    // the client who was scammed is not reviewed
    expect(p.flags.filter((x) => x.accountId === 'acct-scammed')).toEqual([]);
  });
});

describe('cleared stays cleared', () => {
  const start = Date.UTC(2026, 3, 1);
  const cleared = (f: ReviewFlag, decidedAt: number): EngineInput => ({
    kind: 'outcome',
    outcome: {
      outcomeId: `outcome-${f.flagId}`,
      flagId: f.flagId,
      accountId: f.accountId,
      outcome: 'CLEARED',
      noteCategory: 'travel-confirmed',
      decidedAt,
    },
  });
  const now = start + 60 * DAY;

  async function flaggedAndCleared(runId: string) {
    const p = new MemoryPipeline();
    const a = travellingFreelancer(start, runId);
    for (const phase of a.phases) await p.feed(enriched(phase, geo, now), 50);
    expect(p.flags).toEqual([]);
    await p.feed(enriched(vpnTrip(a.accountId, start + 10 * DAY + 8 * HOUR, AWAY.changchun, 1), geo, now));
    expect(p.flags.map((f) => [f.reviewQueue, f.severity])).toEqual([['account_security', 'medium']]);
    const first = p.flags[0]!;
    expect(first.signals.map((s) => s.id)).toEqual(
      expect.arrayContaining(['login.impossible_travel', 'payment.added_after_risky_login']),
    );
    await p.batch([cleared(first, start + 10 * DAY + 12 * HOUR)]);
    return { p, a, first };
  }

  it('the same pattern the next morning and a week later raises nothing; after the cooldown it is judged again', async () => {
    const { p, a, first } = await flaggedAndCleared('cleared');
    // what the reviewer saw is forgotten: nothing remembered of the cleared flag's signals
    const stored = (await p.stored(a.accountId))!;
    for (const s of first.signals) expect(stored.observations.has(s.id)).toBe(false);
    expect([...stored.clearedPatterns.keys()]).toEqual([
      `account_security:ip+login+payment|${first.signals
        .map((s) => s.id)
        .sort()
        .join(',')}`,
    ]);

    await p.feed(enriched(vpnTrip(a.accountId, start + 11 * DAY + 8 * HOUR, AWAY.milton, 2), geo, now));
    await p.feed(enriched(vpnTrip(a.accountId, start + 17 * DAY + 8 * HOUR, AWAY.manila, 3), geo, now));
    expect(p.flags).toHaveLength(1);
    // judged and recognised: the decision says the reviewer cleared it
    const [decision] = scoreAccount((await p.stored(a.accountId))!, start + 17 * DAY + 9 * HOUR, p.policy);
    expect(decision).toMatchObject({ queue: 'account_security', clearedByReview: true, corroborated: true });
    expect(decision!.score).toBeGreaterThanOrEqual(decision!.threshold);

    // the cooldown (30d from the decision) is over: the same pattern goes to review again, as a new flag
    await p.feed(enriched(vpnTrip(a.accountId, start + 41 * DAY + 8 * HOUR, AWAY.boxford, 4), geo, now));
    expect(p.flags).toHaveLength(2);
    const again = p.flags[1]!;
    expect(again.flagId).not.toBe(first.flagId);
    expect(again.revision).toBe(1);
    // only this trip's evidence, none of what was cleared
    const clearedEvidence = new Set(first.signals.flatMap((s) => s.evidenceEventIds));
    for (const s of again.signals)
      if (s.id !== 'ip.anonymizer_share')
        for (const id of s.evidenceEventIds) expect(clearedEvidence.has(id), `${s.id} ${id}`).toBe(false);
  });

  it('a takeover during the cooldown still reaches review, and says a related pattern was cleared', async () => {
    const { p, a } = await flaggedAndCleared('takeover');
    await p.feed(enriched(takeoverAttempt(a.accountId, start + 12 * DAY + 3 * HOUR), geo, now));
    expect(p.flags).toHaveLength(2);
    const f = p.flags[1]!;
    expect(f.reviewQueue).toBe('account_security');
    expect(f.signals.map((s) => s.id)).toContain('login.failed_burst');
    const note = f.mitigations.find((m) => m.id === 'cleared_review')!;
    expect(note.factor).toBe(1);
    expect(note.effect).toMatch(
      /^an earlier review cleared a related pattern .*new here: login\.failed_burst/,
    );
  });
});
