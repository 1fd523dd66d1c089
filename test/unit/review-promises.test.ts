// Issue 18's stories through the engine in memory (the production code path over an in-process
// state backend): what reaches review, and what does not. The same stories run through Kafka in
// test/integration/review-promises.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { GeoIp } from '../../src/enrich/geoip.js';
import { DAY } from '../../src/scenarios/reference.js';
import { MemoryPipeline } from '../support/engine.js';
import { shippedConfig } from '../support/snapshot.js';
import { accountSharing, enriched, newAgency } from '../support/stories.js';

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
    // the client who was scammed is not reviewed
    expect(p.flags.filter((x) => x.accountId === 'acct-scammed')).toEqual([]);
  });
});
