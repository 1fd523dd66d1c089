// Generated event streams for the engine's properties (batch independence, duplicates, order):
// a few accounts living through episodes that make signals fire (failed-login bursts, takeovers,
// card testing, shared addresses and cards, contracts between accounts sharing a device), and
// the ways a stream can be delivered (cut into batches, delivered again, reordered, hostile).
import fc from 'fast-check';
import type { EnrichedEvent, Geo } from '../../src/domain/events.js';
import { canonicalAccount } from '../../src/features/persisted.js';
import type { MemoryPipeline } from './engine.js';
import { DAY, GEO, HOUR, MINUTE, T0, account, contract, ipObservation, login, payment } from './snapshot.js';

const ACCOUNTS = ['acct-a', 'acct-b', 'acct-c', 'acct-d', 'acct-e'];
const PLACES: Geo[] = [GEO.milton, GEO.linkoping, GEO.melbourne, GEO.changchun, GEO.vpn, GEO.carrier];

type Episode = {
  at: number;
  who: number;
  other: number;
  kind: string;
  n: number;
  place: number;
  device: number;
};

const episode = fc.record({
  at: fc.integer({ min: 0, max: 6 * DAY }),
  who: fc.nat(ACCOUNTS.length - 1),
  other: fc.nat(ACCOUNTS.length - 1),
  kind: fc.constantFrom(
    'login',
    'login',
    'login',
    'burst',
    'takeover',
    'cards',
    'shared',
    'contract',
    'context',
    'logout',
  ),
  n: fc.integer({ min: 1, max: 12 }),
  place: fc.nat(PLACES.length - 1),
  device: fc.nat(2),
});

let run = 0;

/** One episode as events (ids unique within the stream). */
function expand(e: Episode, tag: string): EnrichedEvent[] {
  const acct = ACCOUNTS[e.who]!;
  const other = ACCOUNTS[e.other === e.who ? (e.who + 1) % ACCOUNTS.length : e.other]!;
  const at = T0 + e.at;
  const id = (k: string, i = 0) => `${tag}-${k}-${e.who}-${e.at}-${i}`;
  const geo = PLACES[e.place]!;
  const device = `dev-${e.who}-${e.device}`;
  switch (e.kind) {
    case 'login':
      return [
        login({ eventId: id('l'), accountId: acct, at, geo, deviceId: device, sessionId: id('s') }),
        ipObservation({ eventId: id('ip'), accountId: acct, at: at + MINUTE, geo, deviceId: device }),
      ];
    case 'logout':
      return [
        login({ eventId: id('in'), accountId: acct, at, geo, deviceId: device, sessionId: id('s') }),
        login({
          eventId: id('out'),
          accountId: acct,
          at: at + 20 * MINUTE,
          geo,
          outcome: 'LOGOUT',
          sessionId: id('s'),
        }),
      ];
    case 'burst':
      return Array.from({ length: e.n }, (_, i) =>
        login({
          eventId: id('f', i),
          accountId: acct,
          at: at + i * MINUTE,
          geo: GEO.changchun,
          outcome: 'FAILURE',
          sessionId: null,
        }),
      );
    case 'takeover':
      return [
        login({
          eventId: id('t'),
          accountId: acct,
          at,
          geo: GEO.milton,
          deviceId: device,
          sessionId: id('s1'),
        }),
        login({
          eventId: id('x'),
          accountId: acct,
          at: at + 50 * MINUTE,
          geo: GEO.changchun,
          deviceId: 'dev-attacker',
          sessionId: id('s2'),
        }),
        payment({
          eventId: id('p'),
          accountId: acct,
          at: at + 60 * MINUTE,
          geo: GEO.changchun,
          deviceId: 'dev-attacker',
          instrumentFingerprint: `fp-${e.who}-new`,
        }),
      ];
    case 'cards':
      return Array.from({ length: Math.min(e.n, 7) }, (_, i) =>
        payment({
          eventId: id('c', i),
          accountId: acct,
          at: at + i * 10 * MINUTE,
          geo,
          action: i % 2 ? 'VERIFICATION_FAILED' : 'ADDED',
          instrumentFingerprint: `fp-${e.who}-${i}`,
        }),
      );
    case 'shared':
      // everyone in turn on one residential address, with one card
      return ACCOUNTS.slice(0, 2 + (e.n % 4)).flatMap((a, i) => [
        login({
          eventId: id(`sh${i}`),
          accountId: a,
          at: at + i * 5 * MINUTE,
          geo: GEO.linkoping,
          deviceId: `dev-${i}-0`,
          sessionId: id(`ss${i}`),
        }),
        payment({
          eventId: id(`sp${i}`),
          accountId: a,
          at: at + i * 5 * MINUTE + 1000,
          geo: GEO.linkoping,
          instrumentFingerprint: 'fp-shared',
        }),
      ]);
    case 'contract': {
      const base = {
        contractId: `ctr-${e.who}-${e.other}`,
        clientAccountId: other,
        freelancerAccountId: acct,
        deviceId: device,
        geo,
      };
      return [
        contract({ ...base, eventId: id('k1'), accountId: other, at, action: 'STARTED' }),
        contract({ ...base, eventId: id('k2'), accountId: other, at: at + HOUR, action: 'MILESTONE_PAID' }),
        contract({
          ...base,
          eventId: id('k3'),
          accountId: acct,
          at: at + 2 * HOUR,
          action: 'ENDED',
          rating: 5,
        }),
        ...(e.n > 8
          ? [
              contract({
                ...base,
                eventId: id('k4'),
                accountId: other,
                at: at + 3 * HOUR,
                action: 'DISPUTED',
                disputeReason: 'NON_DELIVERY',
              }),
            ]
          : []),
      ];
    }
    default:
      return [
        account({ eventId: id('a1'), accountId: acct, at: at - 400 * DAY, action: 'CREATED' }),
        account({
          eventId: id('a2'),
          accountId: acct,
          at,
          action: e.n > 6 ? 'IDENTITY_VERIFIED' : 'STATS_UPDATED',
          lifetimeCompletedContracts: e.n,
        }),
      ];
  }
}

/** A stream in event-time order (ties in generation order). */
export const stream: fc.Arbitrary<EnrichedEvent[]> = fc
  .array(episode, { minLength: 3, maxLength: 14 })
  .map((episodes) => {
    const tag = `r${++run}`;
    const events = episodes.flatMap((e) => expand(e, tag));
    const unique = new Map(events.map((e) => [e.event.eventId, e]));
    return [...unique.values()].sort((a, b) => a.event.occurredAt - b.event.occurredAt);
  });

/** Batch sizes for a stream of `n` events (what is left over is one last batch). */
export const cuts = (n: number) => fc.array(fc.integer({ min: 1, max: Math.max(1, n) }), { maxLength: 8 });

/** The stream with some events delivered again, right after themselves or later. */
export function duplicated(events: EnrichedEvent[]): fc.Arbitrary<EnrichedEvent[]> {
  return fc
    .array(fc.tuple(fc.nat(Math.max(0, events.length - 1)), fc.nat(8)), { minLength: 1, maxLength: 10 })
    .map((dups) => {
      const out = [...events];
      for (const [i, after] of dups) {
        const original = events[i]!;
        const at = out.indexOf(original);
        out.splice(Math.min(out.length, at + 1 + after), 0, {
          ...original,
          event: { ...original.event },
        } as EnrichedEvent);
      }
      return out;
    });
}

/**
 * The stream with a few events' ids reused, right after them, by events with other content (a
 * reuse that arrives later than the allowed lateness is late, and changes nothing either way).
 */
export function withConflicts(events: EnrichedEvent[]): fc.Arbitrary<EnrichedEvent[]> {
  return fc
    .uniqueArray(fc.nat(Math.max(0, events.length - 1)), { minLength: 1, maxLength: 4 })
    .map((picks) => {
      const out = [...events];
      for (const i of picks) {
        const original = events[i]!;
        // the same family and time under the same id: another device tells it apart
        const clash = {
          ...original,
          event: { ...original.event, deviceId: `dev-clash-${i}` },
        } as EnrichedEvent;
        out.splice(out.indexOf(original) + 1, 0, clash);
      }
      return out;
    });
}

/**
 * The stream reordered so that no event arrives after one more than the allowed lateness newer:
 * each is delayed by less than the lateness, and arrival is by time plus delay.
 */
export function reorderedWithinLateness(
  events: EnrichedEvent[],
  latenessMs: number,
): fc.Arbitrary<EnrichedEvent[]> {
  return fc
    .array(fc.integer({ min: 0, max: latenessMs - 1 }), {
      minLength: events.length,
      maxLength: events.length,
    })
    .map((delays) =>
      events
        .map((e, i) => ({ e, key: e.event.occurredAt + delays[i]! }))
        .sort((a, b) => a.key - b.key)
        .map(({ e }) => e),
    );
}

/** Valid events with hostile values: odd ids, far times, huge counts, unknown places. */
export const hostileStream: fc.Arbitrary<EnrichedEvent[]> = stream.chain((events) =>
  fc
    .array(
      fc.tuple(
        fc.nat(Math.max(0, events.length - 1)),
        fc.integer({ min: -3 * 365, max: 3 * 365 }),
        fc.string({ maxLength: 20 }),
      ),
      { maxLength: 20 },
    )
    .map((changes) => {
      const out = [...events];
      for (const [i, days, text] of changes) {
        const e = events[i]!;
        out.push({
          ...e,
          event: {
            ...e.event,
            eventId: `${e.event.eventId}~${text}`,
            occurredAt: e.event.occurredAt + days * DAY,
          },
          geo: days % 2 ? null : e.geo,
        } as EnrichedEvent);
      }
      return out;
    }),
);

/**
 * What a run leaves that anyone can observe: every account's and entity's stored state, the
 * features alone (the state without signal memory, flags and cap markers, which depend on the
 * order events were judged in: observations, and the sharing episodes a signal found), the flag
 * messages in order, and what was refused.
 */
export function observable(p: MemoryPipeline) {
  const state: Record<string, string> = {};
  const features: Record<string, string> = {};
  for (const [id, bytes] of [...p.backend.accounts].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const f = p.accountOf(id, bytes);
    state[id] = canonicalAccount(f);
    f.observations.clear();
    f.openFlags.clear();
    f.flagGenerations.clear();
    f.capsReached.clear();
    f.events.delete('sharingEpisode');
    features[id] = canonicalAccount(f);
  }
  const entities: Record<string, [string, number][]> = {};
  for (const [k, e] of [...p.backend.entities].sort(([a], [b]) => (a < b ? -1 : 1)))
    entities[k] = [...e.accounts].sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    state,
    features,
    entities,
    flags: p.flags.map((f) => JSON.parse(JSON.stringify(f)) as unknown),
    refused: p.results.flatMap((r) =>
      r.outcomes
        .filter((o) => o.status === 'conflict' || o.status === 'error')
        .map((o) => `${o.status} ${o.detail}`),
    ),
  };
}
