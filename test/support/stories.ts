// Stories as events (issue 18's promises, the analysts' shared-address group), for the in-memory tests
// and the same stories through Kafka.
import type { ActivityEvent } from '../../src/domain/events.js';
import type { EnrichedEvent } from '../../src/domain/events.js';
import type { GeoIp } from '../../src/enrich/geoip.js';
import { ingest } from '../../src/ingest/ingest.js';
import { DAY, HOUR, MINUTE, account, contract, login, payment } from '../../src/scenarios/reference.js';
import { accountsOn } from './config.js';
import { shippedConfig } from './snapshot.js';

export const MILTON = '216.160.83.56';
export const CHANGCHUN = '175.16.199.1';

const idsFor = (prefix: string) => {
  let n = 0;
  return { next: () => `${prefix}-${String(++n).padStart(3, '0')}` };
};

/**
 * One account open in Milton and in Changchun at once (8,600 km apart, neither an anonymizer) on
 * `days` different days: each morning a session from Milton, and half an hour later one from
 * Changchun while the first is still open.
 */
export function accountSharing(accountId: string, t0: number, days: number): ActivityEvent[] {
  const ids = idsFor(`share-${accountId}`);
  return Array.from({ length: days }, (_, d) => {
    const at = t0 + d * DAY;
    return [
      login(ids, accountId, at, MILTON, { deviceId: 'dev-laptop', sessionId: `${accountId}-m-${d}` }),
      login(ids, accountId, at + 30 * MINUTE, CHANGCHUN, {
        deviceId: 'dev-other',
        sessionId: `${accountId}-c-${d}`,
      }),
    ];
  }).flat();
}

/**
 * A brand-new "agency" (created ten days before, identity verified) takes a client's first
 * milestone payment and is disputed for non-delivery: the client scammed by a fake agency.
 */
export function newAgency(agency: string, client: string, t0: number): ActivityEvent[] {
  const ids = idsFor(`agency-${agency}`);
  const contractId = `ctr-${agency}`;
  const sides = { contractId, clientAccountId: client, freelancerAccountId: agency };
  return [
    account(ids, agency, t0 - 10 * DAY, { action: 'CREATED', accountType: 'AGENCY' }),
    account(ids, agency, t0 - 9 * DAY, { action: 'IDENTITY_VERIFIED' }),
    account(ids, client, t0 - 800 * DAY, { action: 'CREATED', accountType: 'CLIENT' }),
    contract(ids, t0 - 5 * DAY, { ...sides, accountId: client, action: 'STARTED' }),
    contract(ids, t0 - 2 * DAY, {
      ...sides,
      accountId: client,
      action: 'MILESTONE_PAID',
      amount: 2500,
      currency: 'USD',
    }),
    contract(ids, t0 + HOUR, {
      ...sides,
      accountId: client,
      action: 'DISPUTED',
      disputeReason: 'NON_DELIVERY',
    }),
  ];
}

export const MELBOURNE = '214.0.1.1';
/** Non-anonymizer addresses of countries the travelling freelancer has never logged in from. */
export const AWAY = {
  changchun: CHANGCHUN,
  milton: MILTON,
  manila: '202.196.224.1',
  boxford: '2.125.160.217',
};
export const BHUTAN = '67.43.156.1';

/**
 * The travelling freelancer (reference scenario A) on a trip fairflag cannot tell from a takeover:
 * a login from Melbourne, 40 minutes later one from `away` through a VPN the databases do not list
 * (so it looks direct) on a new device, then a new card. Impossible travel and a card added after a
 * risky login: a flag a reviewer clears once they have talked to the freelancer.
 */
export function vpnTrip(accountId: string, at: number, away: string, n: number): ActivityEvent[] {
  const ids = idsFor(`trip-${accountId}-${n}`);
  return [
    login(ids, accountId, at, MELBOURNE, { deviceId: 'dev-a-laptop', sessionId: `${accountId}-t${n}-a` }),
    login(ids, accountId, at + 40 * MINUTE, away, {
      deviceId: `dev-a-travel-${n}`,
      sessionId: `${accountId}-t${n}-b`,
    }),
    payment(ids, accountId, at + 50 * MINUTE, {
      methodId: `pm-trip-${n}`,
      instrumentFingerprint: `fp-${accountId}-trip-${n}`,
    }),
  ];
}

/**
 * The owner logs in from Melbourne; then 12 failed logins from Bhutan in 15 minutes, a success
 * there on a new device, a new card (reference scenario B's takeover, elsewhere).
 */
export function takeoverAttempt(accountId: string, at: number): ActivityEvent[] {
  const ids = idsFor(`takeover-${accountId}`);
  return [
    login(ids, accountId, at - 30 * MINUTE, MELBOURNE, {
      deviceId: 'dev-a-laptop',
      sessionId: `${accountId}-owner`,
    }),
    ...Array.from({ length: 12 }, (_, i) =>
      login(ids, accountId, at + i * 75_000, BHUTAN, { outcome: 'FAILURE', deviceId: 'dev-attacker' }),
    ),
    login(ids, accountId, at + 20 * MINUTE, BHUTAN, {
      deviceId: 'dev-attacker',
      sessionId: `${accountId}-x`,
    }),
    payment(ids, accountId, at + 25 * MINUTE, {
      methodId: 'pm-attacker',
      instrumentFingerprint: `fp-${accountId}-attacker`,
    }),
  ];
}

/** Events as the pipeline sees them after validation and MaxMind enrichment. */
export function enriched(events: ActivityEvent[], geo: GeoIp, now: number): EnrichedEvent[] {
  const { config } = shippedConfig();
  return events.map((e) => {
    const r = ingest(e.family, e.event, config.validation, geo, now);
    if (!r.ok) throw new Error(`${e.event.eventId}: ${r.detail}`);
    return r.event;
  });
}

/** n accounts log in from one personal IP and add one card: multiple accounts, two families. */
export function sharedGroup(tag: string, n: number, ip: string, start: number): ActivityEvent[] {
  const events: ActivityEvent[] = [];
  for (let i = 0; i < n; i++) {
    const accountId = `acct-${tag}-${i}`;
    const at = start + i * MINUTE;
    events.push({
      family: 'login',
      event: {
        eventId: `${tag}-l${i}`,
        accountId,
        occurredAt: at,
        outcome: 'SUCCESS',
        ip,
        deviceId: `dev-${tag}-${i}`,
        sessionId: null,
      },
    });
    events.push({
      family: 'payment',
      event: {
        eventId: `${tag}-p${i}`,
        accountId,
        occurredAt: at + 1000,
        action: 'ADDED',
        methodId: 'pm-1',
        methodType: 'CARD',
        instrumentFingerprint: `fp-${tag}`,
        ip: null,
        deviceId: null,
      },
    });
  }
  return events;
}

/**
 * The events with each tag's accounts ("acct-<tag>-n") renamed to accounts of the same tag that
 * partition 0 owns, in the same order: one partition, so live consumes them in one order.
 */
export function onePartition(events: ActivityEvent[]): ActivityEvent[] {
  const names = new Map<string, string>();
  const used = new Map<string, number>();
  const rename = (id: string) => {
    if (!names.has(id)) {
      const tag = id.split('-').slice(0, 2).join('-');
      const k = used.get(tag) ?? 0;
      used.set(tag, k + 1);
      names.set(id, accountsOn(0, k + 1, tag)[k]!);
    }
    return names.get(id)!;
  };
  return events.map(
    (e) => ({ ...e, event: { ...e.event, accountId: rename(e.event.accountId) } }) as ActivityEvent,
  );
}

/**
 * The logins, then the other families: published phase by phase (settling between), they are
 * consumed in this order, and a replay of `phases.flat()` sees the same order.
 */
export const loginsFirst = (events: ActivityEvent[]): ActivityEvent[][] => [
  events.filter((e) => e.family === 'login'),
  events.filter((e) => e.family !== 'login'),
];
