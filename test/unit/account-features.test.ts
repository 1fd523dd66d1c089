// One account's features in memory (src/features/account-features.ts), the single implementation
// of the feature semantics: exact windows, lateness per family, idempotent and order-independent
// merges, retention and caps, novelty, signal memory and event-id dedupe. Compared through the
// stored copy in canonical form (canonicalAccount), so "nothing changed" means nothing Redis would
// hold changed.
import { beforeAll, describe, expect, it } from 'vitest';
import { planEvent } from '../../processors/registry.js';
import type { ActivityEvent, EnrichedEvent } from '../../src/domain/events.js';
import { contentDigest } from '../../src/engine/engine.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { AccountFeatures, digestOf, mergeContract } from '../../src/features/account-features.js';
import {
  EVENT_KINDS,
  type AccountOp,
  type AccountQuery,
  type ContractPatch,
  type ContractRecord,
  type CountResult,
  type EventKind,
  type FeatureLayout,
  type LoginRecord,
  type StoredObservation,
} from '../../src/features/model.js';
import { canonicalAccount, encodeAccount } from '../../src/features/persisted.js';
import { accountTakeover, travellingFreelancer } from '../../src/scenarios/reference.js';
import { MemoryPipeline } from '../support/engine.js';
import {
  DAY,
  HOUR,
  MINUTE,
  T0,
  account,
  contract,
  login,
  observation,
  shippedConfig,
  shippedPolicy,
} from '../support/snapshot.js';

const SECOND = 1_000;

/** A small layout with round numbers: lateness 1h, every event kind kept a day. */
function layoutWith(over: Partial<FeatureLayout> = {}): FeatureLayout {
  const events = Object.fromEntries(Object.keys(EVENT_KINDS).map((k) => [k, DAY])) as Record<
    EventKind,
    number
  >;
  return {
    keyPrefix: 'unit',
    allowedLatenessMs: HOUR,
    eventRetentionMs: events,
    valueRetentionMs: 90 * DAY,
    sessionRetentionMs: 3 * HOUR,
    entityRetentionMs: { ip: 7 * DAY + HOUR, device: 30 * DAY, instrument: 90 * DAY },
    caps: { eventsPerKind: 500, values: 256, sessions: 32, accountsPerEntity: 200 },
    ...over,
  };
}

const fresh = (layout = layoutWith(), id = 'acct-1') => new AccountFeatures(id, layout);
/** The account's features in canonical form (what Redis holds, in key order). */
const bytes = (a: AccountFeatures) => canonicalAccount(a);
/** An event's time, ops and family, as apply takes them. */
type Step = [number, AccountOp[], string];
/** A fresh account with the steps applied in this order. */
const applySteps = (layout: FeatureLayout, order: Step[]) => {
  const a = fresh(layout);
  for (const [at, ops, family] of order) a.apply(at, ops, family);
  return a;
};

const count = (kind: EventKind, windowMs: number, maxIds = 20): AccountQuery => ({
  q: 'count',
  kind,
  from: -windowMs,
  to: 0,
  maxIds,
});
/** A count question's answer (answer() gives any question's). */
const counted = (a: AccountFeatures, q: AccountQuery, t: number) => a.answer(q, t) as CountResult;
const failed = (eventId: string): AccountOp => ({ op: 'event', kind: 'loginFailed', eventId });
const device = (value: string): AccountOp => ({ op: 'value', kind: 'device', value, noveltyName: 'device' });
const personalIp = (value: string): AccountOp => ({ op: 'value', kind: 'personalIp', value });
const start = (sessionId: string, eventId: string): AccountOp => ({
  op: 'sessionStart',
  sessionId,
  latitude: 51.5,
  longitude: -0.09,
  eventId,
});
const end = (sessionId: string): AccountOp => ({ op: 'sessionEnd', sessionId });
const contractOp = (contractId: string, patch: ContractPatch): AccountOp => ({
  op: 'contract',
  contractId,
  patch,
});

describe('sliding windows over event time', () => {
  it('counts (t-W, t]: an event exactly one window old is out, one ms younger is in', () => {
    const a = fresh();
    const W = 15 * MINUTE;
    a.apply(T0 - W, [failed('exactly-W-old')], 'login');
    a.apply(T0 - W + 1, [failed('one-ms-younger')], 'login');
    a.apply(T0, [failed('now')], 'login');
    expect(counted(a, count('loginFailed', W), T0)).toEqual({ n: 2, ids: ['now', 'one-ms-younger'] });
    // the old one was kept, the window excluded it: one ms wider and it is in
    expect(counted(a, count('loginFailed', W + 1), T0).ids).toEqual([
      'now',
      'one-ms-younger',
      'exactly-W-old',
    ]);
    // maxIds limits the ids named, never the count
    expect(counted(a, count('loginFailed', W, 1), T0)).toEqual({ n: 2, ids: ['now'] });
    expect(counted(a, count('loginFailed', W, 0), T0)).toEqual({ n: 2, ids: [] });

    // the upper edge is inclusive and later events are not in a window that ends at t
    a.apply(T0 + 1, [failed('after')], 'login');
    expect(counted(a, count('loginFailed', W), T0).ids).toEqual(['now', 'one-ms-younger']);
    // a window after t (an earlier event arriving late asks what came after it): (t-1, t+W]
    expect(counted(a, { q: 'count', kind: 'loginFailed', from: -1, to: W, maxIds: 20 }, T0).ids).toEqual([
      'after',
      'now',
    ]);
  });

  it('counts distinct values and open sessions after t-W, exclusive at the edge', () => {
    const a = fresh();
    const W = HOUR;
    a.apply(T0 - W, [device('dev-edge'), start('s-edge', 'l-1')], 'login');
    a.apply(T0 - W + 1, [device('dev-in'), start('s-in', 'l-2')], 'login');
    a.apply(T0, [device('dev-in'), personalIp('81.2.69.142')], 'login');
    expect(a.answer({ q: 'distinct', kind: 'device', from: -W, maxValues: 10 }, T0)).toEqual({
      n: 1,
      values: ['dev-in'],
    });
    expect(a.distinct('device', T0 - W - 1, 10)).toEqual({ n: 2, values: ['dev-in', 'dev-edge'] });
    // kinds of value never mix
    expect(a.distinct('personalIp', T0 - W - 1, 10).values).toEqual(['81.2.69.142']);
    expect(a.distinct('country', T0 - W - 1, 10)).toEqual({ n: 0, values: [] });
    expect(
      (a.answer({ q: 'sessions', from: -W }, T0) as { sessionId: string }[]).map((s) => s.sessionId),
    ).toEqual(['s-in']);
  });

  it('keeps the earliest time of an event id seen at two times, in either order', () => {
    const x = fresh();
    const y = fresh();
    x.apply(T0, [failed('f-1')], 'login');
    x.apply(T0 - MINUTE, [failed('f-1')], 'login');
    y.apply(T0 - MINUTE, [failed('f-1')], 'login');
    y.apply(T0, [failed('f-1')], 'login');
    expect(x.events.get('loginFailed')).toEqual(new Map([['f-1', T0 - MINUTE]]));
    // the watermark moved with the newer one in both
    expect(bytes(x)).toEqual(bytes(y));
  });
});

describe('counted-only kinds', () => {
  it('counts each session event once by a digest of its id, and refuses to list them', () => {
    const a = fresh();
    const ids = ['0c592c0b-05f3-406c-9bf4-fae32486263d', '2b702213-bd72-4252-97f9-e9b68c1849d3'];
    for (const eventId of [...ids, ids[0]!]) a.apply(T0, [{ op: 'event', kind: 'session', eventId }], 'ip');
    expect(counted(a, count('session', HOUR, 0), T0)).toEqual({ n: 2, ids: [] });
    // 11 characters kept per session instead of a 36-character id, in memory and encoded
    const members = [...a.events.get('session')!.keys()].sort();
    expect(members).toEqual(ids.map(digestOf).sort());
    for (const m of members) expect(m).toMatch(/^[\w-]{11}$/);
    const encoded = encodeAccount(a);
    for (const id of ids) expect(encoded.includes(Buffer.from(id))).toBe(false);
    // the digests are not event ids: naming them as evidence would mislead a reviewer
    expect(() => counted(a, count('session', HOUR, 1), T0)).toThrow(/only counted/);
    // kinds that are listed keep the id itself
    a.apply(T0, [{ op: 'event', kind: 'anonymizedSession', eventId: ids[0]! }], 'ip');
    expect(counted(a, count('anonymizedSession', HOUR), T0).ids).toEqual([ids[0]]);
  });
});

describe('lateness', () => {
  it('counts an out-of-order event inside the allowed lateness; windows are measured from its own time', () => {
    const a = fresh();
    const W = 15 * MINUTE;
    a.apply(T0, [failed('f-now')], 'login');
    const r = a.apply(T0 - 10 * MINUTE, [failed('f-10m-earlier')], 'login');
    expect(r.late).toBe(false);
    // the watermark stays at the newest event
    expect(a.watermark).toBe(T0);
    expect(a.familyWatermarks.get('login')).toBe(T0);
    expect(counted(a, count('loginFailed', W), T0 - 10 * MINUTE)).toEqual({ n: 1, ids: ['f-10m-earlier'] });
    expect(counted(a, count('loginFailed', W), T0).ids).toEqual(['f-now', 'f-10m-earlier']);
  });

  it('is late only when older than the family watermark minus the lateness', () => {
    const a = fresh();
    a.apply(T0, [failed('f-now')], 'login');
    expect(a.apply(T0 - HOUR, [failed('f-at-edge')], 'login').late).toBe(false);
    expect(a.apply(T0 - HOUR - 1, [failed('f-past-edge')], 'login').late).toBe(true);
    expect([...a.events.get('loginFailed')!.keys()].sort()).toEqual(['f-at-edge', 'f-now']);
  });

  it('ignores windowed changes beyond the lateness but still applies context', () => {
    const W = 3 * HOUR;
    const first: AccountOp[] = [
      { op: 'event', kind: 'anonymizedSession', eventId: 'sess-now' },
      personalIp('81.2.69.142'),
    ];
    const context: AccountOp[] = [
      { op: 'context', field: 'createdAt', value: String(T0 - 400 * DAY) },
      { op: 'context', field: 'identity', value: '1' },
      { op: 'context', field: 'stats', value: '25|1200|' },
    ];
    const a = fresh();
    const onlyContext = fresh();
    for (const x of [a, onlyContext]) x.apply(T0, first, 'account');

    const r = a.apply(
      T0 - HOUR - 1,
      [
        { op: 'event', kind: 'anonymizedSession', eventId: 'sess-late' },
        personalIp('216.160.83.56'),
        ...context,
      ],
      'account',
    );
    // the value op was read (not yet seen), not written
    expect(r).toEqual({ late: true, lastSeenBefore: [{}] });
    expect(a.watermark).toBe(T0);
    // the late event's own window (T0-4h-1ms, T0-1h-1ms] sees nothing: its session was not recorded
    expect(counted(a, count('anonymizedSession', W), T0 - HOUR - 1).n).toBe(0);
    expect(counted(a, count('anonymizedSession', W), T0).ids).toEqual(['sess-now']);
    // distinct values run from t-W on (last-seen times only move forward): the late IP is absent
    expect(a.answer({ q: 'distinct', kind: 'personalIp', from: -W, maxValues: 10 }, T0 - HOUR - 1)).toEqual({
      n: 1,
      values: ['81.2.69.142'],
    });
    // context fields: the latest event time wins, and lateness does not apply
    expect(a.context).toEqual({
      createdAt: T0 - 400 * DAY,
      identityVerified: true,
      identityChangedAt: T0 - HOUR - 1,
      lifetimeCompletedContracts: 25,
      lifetimePaidHours: 1200,
    });
    // byte for byte what the context ops alone leave: the windowed ops changed nothing
    onlyContext.apply(T0 - HOUR - 1, context, 'account');
    expect(bytes(a)).toEqual(bytes(onlyContext));
  });

  it('judges lateness per family: a login far behind the newest contract event is not late', () => {
    const a = fresh(shippedPolicy().layout);
    const W = 15 * MINUTE;
    a.apply(
      T0,
      [
        contractOp('ct-1', { role: 'freelancer', counterpart: 'acct-2', startedAt: T0 }),
        { op: 'event', kind: 'milestonePaid', eventId: 'paid-1' },
        device('dev-1'),
      ],
      'contract',
    );
    // the login topic lags five hours behind the contract topic (a backlog): not late for logins
    const lag = 5 * HOUR;
    a.apply(T0 - lag - MINUTE, [failed('f-1')], 'login');
    const r = a.apply(
      T0 - lag,
      [failed('f-2'), { op: 'event', kind: 'session', eventId: 'login-1' }, start('s-1', 'login-1')],
      'login',
    );
    expect(r.late).toBe(false);
    expect(a.watermark).toBe(T0);
    expect(Object.fromEntries(a.familyWatermarks)).toEqual({ contract: T0, login: T0 - lag });
    expect(counted(a, count('loginFailed', W), T0 - lag).ids).toEqual(['f-2', 'f-1']);
    expect(a.openSessions(T0 - lag - 2 * HOUR).map((s) => s.sessionId)).toEqual(['s-1']);

    // the contract family keeps its own watermark: one hour and a bit behind it is late
    const paidLate = a.apply(
      T0 - HOUR - 1,
      [{ op: 'event', kind: 'milestonePaid', eventId: 'paid-late' }],
      'contract',
    );
    expect(paidLate.late).toBe(true);
    expect(counted(a, count('milestonePaid', DAY), T0 - HOUR - 1).n).toBe(0);
    expect([...a.events.get('milestonePaid')!.keys()]).toEqual(['paid-1']);

    // without a family, lateness is judged against the account's newest event of any family
    expect(a.apply(T0 - lag, [failed('f-3')], undefined).late).toBe(true);
  });
});

describe('novelty', () => {
  it('returns when each value was last and first seen, as stored before the event', () => {
    const a = fresh();
    const seen = (at: number, ops: AccountOp[]) => a.apply(at, ops, 'login').lastSeenBefore;

    expect(seen(T0, [device('dev-1'), personalIp('81.2.69.142')])).toEqual([{}, {}]);
    // only values whose novelty matters keep a first sighting
    expect(seen(T0 + HOUR, [device('dev-1'), personalIp('81.2.69.142')])).toEqual([
      { last: T0, first: T0 },
      { last: T0 },
    ]);
    // an earlier sighting (within the lateness) moves neither last-seen back nor first-seen forward
    expect(seen(T0 + 30 * MINUTE, [device('dev-1')])).toEqual([{ last: T0 + HOUR, first: T0 }]);
    expect(seen(T0 + 2 * HOUR, [device('dev-1'), device('dev-2')])).toEqual([
      { last: T0 + HOUR, first: T0 },
      {},
    ]);
    // two ops of one event do not see each other
    expect(seen(T0 + 3 * HOUR, [device('dev-3'), device('dev-3')])).toEqual([{}, {}]);
    // a late event reads what is stored and changes nothing
    expect(seen(T0, [device('dev-4'), device('dev-1')])).toEqual([{}, { last: T0 + 2 * HOUR, first: T0 }]);
    expect(seen(T0 + 4 * HOUR, [device('dev-4'), device('dev-5')])).toEqual([{}, {}]);
    // an earlier sighting arriving within the lateness moves first-seen back
    seen(T0 + 4 * HOUR - 30 * MINUTE, [device('dev-5')]);
    expect(seen(T0 + 5 * HOUR, [device('dev-5')])).toEqual([
      { last: T0 + 4 * HOUR, first: T0 + 4 * HOUR - 30 * MINUTE },
    ]);
  });

  it('lastSeen() answers the same without changing anything (explain)', () => {
    const a = fresh();
    a.apply(T0, [device('dev-1'), personalIp('81.2.69.142')], 'login');
    const before = bytes(a);
    expect(a.lastSeen([device('dev-1'), failed('f'), personalIp('81.2.69.142'), device('dev-2')])).toEqual([
      { last: T0, first: T0 },
      { last: T0 },
      {},
    ]);
    expect(bytes(a)).toBe(before);
  });
});

describe('value retention', () => {
  it('drops values at or before the newest value minus the retention, first sightings and ended contracts with them', () => {
    const L = layoutWith();
    const a = fresh(L);
    a.apply(T0, [device('dev-old'), contractOp('ct-old', { startedAt: T0, endedAt: T0 })], 'login');
    // an open contract is context: it lives until it ends, however long ago it was last seen
    a.apply(T0, [contractOp('ct-open', { startedAt: T0 })], 'contract');
    a.apply(T0 + 1, [device('dev-kept')], 'login');
    a.apply(T0 + L.valueRetentionMs, [device('dev-new')], 'login');
    expect(a.distinct('device', 0, 10).values).toEqual(['dev-new', 'dev-kept']);
    expect([...a.firstSeen.keys()].sort()).toEqual(['device:dev-kept', 'device:dev-new']);
    expect(a.contractList()).toEqual([{ contractId: 'ct-open', startedAt: T0 }]);
  });

  it('a contract started long before the newer events of the account still counts, in any order (issue 18)', () => {
    const L = shippedPolicy().layout;
    const started = T0 - 425 * DAY;
    const login: Step = [T0, [device('dev-1')], 'login'];
    const start: Step = [started, [contractOp('c', { startedAt: started })], 'contract'];
    const paid: Step = [T0 - DAY, [contractOp('c', { lastPaidAt: T0 - DAY })], 'contract'];
    const results = [
      [login, start, paid],
      [start, paid, login],
      [paid, login, start],
      [start, login, paid, start],
    ].map((order) => applySteps(L, order).contractList());
    for (const r of results)
      expect(r).toEqual([{ contractId: 'c', startedAt: started, lastPaidAt: T0 - DAY }]);
  });

  it('a late end of a contract the account holds open ends it, and a replay of both leaves it ended (issue 18)', () => {
    // the counterexample fast-check found (CI at 5c1c174): without the end landing, the replayed
    // start came back as an open contract the first pass had ended and forgotten
    const L = shippedPolicy().layout;
    const old = T0 - L.valueRetentionMs - DAY;
    const start: Step = [old, [contractOp('c', { startedAt: old })], 'contract'];
    const end: Step = [old, [contractOp('c', { endedAt: old, endEventId: 'end-1' })], 'contract'];
    const login: Step = [T0, [device('dev-1')], 'login'];
    const inOrder = applySteps(L, [start, end, login]);
    expect(inOrder.contractList()).toEqual([]);
    for (const order of [
      [start, end, login, start, end, login],
      [start, login, end],
      [login, start, end],
    ])
      expect(bytes(applySteps(L, order))).toEqual(bytes(inOrder));
    // the late end of a contract still open is kept while the contract's later steps are recent
    const paid: Step = [T0 - DAY, [contractOp('c', { lastPaidAt: T0 - DAY })], 'contract'];
    expect(applySteps(L, [start, paid, login, end]).contractList()).toEqual([
      { contractId: 'c', startedAt: old, lastPaidAt: T0 - DAY, endedAt: old, endEventId: 'end-1' },
    ]);
  });

  it('a contract id seen again just beyond the retention starts a new life; replaying the old life leaves the new one alone', () => {
    // the counterexample fast-check found (CI at 71105a6, seed 274339): the old life's start,
    // replayed late, brought the forgotten old life back and merged it into the new one
    const L = shippedPolicy().layout;
    const old = T0 - L.valueRetentionMs - 1;
    const end: Step = [old, [contractOp('c', { endedAt: old, endEventId: 'end-1' })], 'contract'];
    const start: Step = [old, [contractOp('c', { startedAt: old })], 'contract'];
    const again: Step = [T0, [contractOp('c', { startedAt: T0 })], 'contract'];
    const once = applySteps(L, [end, start, again]);
    expect(once.contractList()).toEqual([{ contractId: 'c', startedAt: T0 }]);
    expect(bytes(applySteps(L, [end, start, again, end, start, again]))).toEqual(bytes(once));
    expect(bytes(applySteps(L, [end, start, again, start]))).toEqual(bytes(once));
    // a start just inside the retention of the new life's first step still joins the two lives
    const bridge: Step = [
      T0 - L.valueRetentionMs,
      [contractOp('c', { startedAt: T0 - L.valueRetentionMs })],
      'contract',
    ];
    const bridged = applySteps(L, [end, start, again, bridge]);
    expect(bridged.contractList()).toEqual([
      { contractId: 'c', startedAt: old, endedAt: old, endEventId: 'end-1' },
    ]);
    expect(bytes(bridged)).toEqual(bytes(applySteps(L, [end, start, bridge, again])));
  });

  it('an ended contract forgotten long ago stays ended when its start is replayed (a topic read again)', () => {
    // the counterexample fast-check found (properties, seed 4242): once the ended contract's life
    // kept aside had gone with the lateness, its replayed start opened the contract again
    const L = shippedPolicy().layout;
    const old = T0 - L.valueRetentionMs - DAY;
    const end: Step = [old, [contractOp('c', { endedAt: old, endEventId: 'end-1' })], 'contract'];
    const start: Step = [old, [contractOp('c', { startedAt: old })], 'contract'];
    const login: Step = [T0, [device('dev-1')], 'login'];
    const later: Step = [T0 + 30 * DAY, [device('dev-2')], 'login'];
    const once = applySteps(L, [end, start, login, later]);
    expect(once.contractList()).toEqual([]);
    expect(bytes(applySteps(L, [end, start, login, later, end, start, login, later]))).toEqual(bytes(once));
    expect(applySteps(L, [end, start, login, later, start]).contractList()).toEqual([]);
  });

  it('an event older than the value retention writes no values; its contract step joins its life, in any order or replayed', () => {
    // the counterexample fast-check once found on the Lua store, made explicit: the newest value
    // comes from another family (topics lag each other), so the old contract steps are not late
    const L = shippedPolicy().layout;
    const newest = T0;
    const old = newest - L.valueRetentionMs;
    const first: Step = [newest, [personalIp('81.2.69.142')], 'login'];
    const stale: Step = [old, [contractOp('b', { firstPaidAt: old }), device('dev-b')], 'contract'];
    const later: Step = [old + 1, [contractOp('b', {}), device('dev-b')], 'contract'];
    const results = [
      [first, stale, later],
      [first, later, stale],
      [first, stale, later, first, stale, later],
    ].map((order) => {
      const a = fresh(L);
      for (const [at, ops, family] of order) expect(a.apply(at, ops, family).late).toBe(false);
      return a;
    });
    expect(bytes(results[1]!)).toEqual(bytes(results[0]!));
    expect(bytes(results[2]!)).toEqual(bytes(results[0]!));
    // the stale step wrote no value: the device's first sighting comes from the later event; its
    // payment is within the retention of contract b's later step, so in event order it was b's
    const a = results[0]!;
    expect(a.contractList()).toEqual([{ contractId: 'b', firstPaidAt: old }]);
    expect(a.firstSeen).toEqual(new Map([['device:dev-b', old + 1]]));
    expect(a.values.get('device')).toEqual(new Map([['dev-b', old + 1]]));
    // exactly the retention old is stale, one ms younger is not
    const edge = fresh(L);
    edge.apply(newest, [personalIp('81.2.69.142')], 'login');
    edge.apply(old, [device('dev-stale')], 'ip');
    edge.apply(old + 1, [device('dev-kept')], 'ip');
    expect(edge.distinct('device', 0, 10).values).toEqual(['dev-kept']);
  });
});

describe('contract steps older than the value retention', () => {
  // the counterexamples fast-check found (properties, seeds 448717 and 61): a step older than the
  // retention that found no contract was dropped, so a start of the same time arriving next opened
  // the contract without it, and the step applied again was then written
  const L = shippedPolicy().layout;
  const newest = T0;
  const old = newest - L.valueRetentionMs;
  const value: Step = [newest, [personalIp('81.2.69.142')], 'payment'];
  const start: Step = [old, [contractOp('c', { startedAt: old })], 'contract'];

  it('a step set aside joins the start that comes after it: refund first, applied twice', () => {
    const refund: Step = [old, [contractOp('c', { disputedAt: old })], 'contract'];
    const once = applySteps(L, [value, refund, start]);
    expect(once.contractList()).toEqual([{ contractId: 'c', startedAt: old, disputedAt: old }]);
    expect(bytes(applySteps(L, [value, refund, start, value, refund, start]))).toEqual(bytes(once));
    expect(bytes(applySteps(L, [value, start, refund]))).toEqual(bytes(once));
  });

  it('an end set aside keeps its contract ended when the start arrives (no running contract)', () => {
    const end: Step = [old, [contractOp('c', { endedAt: old, endEventId: 'end-1' })], 'contract'];
    const once = applySteps(L, [value, end, start]);
    // ended and beyond the retention: kept aside, not among the contracts a signal sees
    expect(once.contractList()).toEqual([]);
    expect(once.forgotten.get('contract:c')?.contract).toEqual({
      contractId: 'c',
      startedAt: old,
      endedAt: old,
      endEventId: 'end-1',
    });
    expect(bytes(applySteps(L, [value, end, start, value, end, start]))).toEqual(bytes(once));
    expect(bytes(applySteps(L, [value, start, end]))).toEqual(bytes(once));
  });

  it('of two steps more than the retention apart, set aside in either order, the later life is kept', () => {
    const end: Step = [old, [contractOp('c', { endedAt: old, endEventId: 'end-1' })], 'contract'];
    const older: Step = [
      old - L.valueRetentionMs - 1,
      [contractOp('c', { disputedAt: old - L.valueRetentionMs - 1 })],
      'contract',
    ];
    const once = applySteps(L, [value, end, older]);
    expect(once.forgotten.get('contract:c')?.contract).toEqual({
      contractId: 'c',
      endedAt: old,
      endEventId: 'end-1',
    });
    expect(bytes(applySteps(L, [value, older, end]))).toEqual(bytes(once));
    expect(bytes(applySteps(L, [value, end, older, value, end, older]))).toEqual(bytes(once));
  });

  it('a start older than the life kept aside by more than the retention neither joins nor reopens it', () => {
    // the counterexample fast-check found (seed 355): the replayed start of a life no longer kept
    // brought back the later life kept aside, and merged into it
    const R = L.valueRetentionMs;
    const first: Step[] = [
      [old - R - 1, [contractOp('c', { startedAt: old - R - 1 })], 'contract'],
      [old - R - 1, [contractOp('c', { endedAt: old - R - 1, endEventId: 'end-1' })], 'contract'],
    ];
    const later: Step = [old, [contractOp('c', { endedAt: old, endEventId: 'end-2' })], 'contract'];
    const once = applySteps(L, [...first, later, value]);
    expect(once.contractList()).toEqual([]);
    expect(once.forgotten.get('contract:c')?.contract).toEqual({
      contractId: 'c',
      endedAt: old,
      endEventId: 'end-2',
    });
    expect(bytes(applySteps(L, [...first, later, value, ...first, later, value]))).toEqual(bytes(once));
  });
});

describe('bounded memory', () => {
  it('drops events older than the retention, measured from the newest member of their own set', () => {
    const a = fresh();
    a.apply(T0, [failed('f-1'), { op: 'event', kind: 'methodAdded', eventId: 'p-1' }], 'login');
    a.apply(T0 + 1, [failed('f-2')], 'login');
    // a newer event of another kind trims nothing here
    a.apply(T0 + 10 * DAY, [{ op: 'event', kind: 'dispute', eventId: 'd-1' }], 'contract');
    expect([...a.events.get('loginFailed')!.keys()]).toEqual(['f-1', 'f-2']);
    a.apply(T0 + DAY, [failed('f-3')], 'login');
    // exactly the retention old is out, one ms younger is in
    expect([...a.events.get('loginFailed')!.keys()].sort()).toEqual(['f-2', 'f-3']);
    expect([...a.events.get('methodAdded')!.keys()]).toEqual(['p-1']);
  });

  it('keeps only the newest members past a cap, and says so', () => {
    const a = fresh(layoutWith({ caps: { eventsPerKind: 5, values: 4, sessions: 3, accountsPerEntity: 3 } }));
    for (let i = 1; i <= 8; i++) {
      a.apply(T0 + i * SECOND, [failed(`f-${i}`), device(`dev-${i}`), start(`s-${i}`, `l-${i}`)], 'login');
    }
    const at = T0 + 8 * SECOND;
    expect(counted(a, count('loginFailed', DAY), at)).toEqual({
      n: 5,
      ids: ['f-8', 'f-7', 'f-6', 'f-5', 'f-4'],
    });
    expect(a.answer({ q: 'distinct', kind: 'device', from: -DAY, maxValues: 20 }, at)).toEqual({
      n: 4,
      values: ['dev-8', 'dev-7', 'dev-6', 'dev-5'],
    });
    expect(a.openSessions(at - HOUR).map((s) => s.sessionId)).toEqual(['s-8', 's-7', 's-6']);
    expect(Object.fromEntries(a.capsReached)).toEqual({ 'e:loginFailed': at, v: at, s: at });
    // a value dropped by the cap is forgotten everywhere, first sighting included
    expect([...a.firstSeen.keys()].sort()).toEqual([
      'device:dev-5',
      'device:dev-6',
      'device:dev-7',
      'device:dev-8',
    ]);

    // an older member arriving within the lateness is dropped at once: the newest stay
    a.apply(T0 + 500, [failed('f-0'), device('dev-0')], 'login');
    expect(counted(a, count('loginFailed', DAY), at).ids).toEqual(['f-8', 'f-7', 'f-6', 'f-5', 'f-4']);
    expect(a.distinct('device', 0, 20).values).toEqual(['dev-8', 'dev-7', 'dev-6', 'dev-5']);
    expect(a.firstSeen.has('device:dev-0')).toBe(false);
  });

  it('shares the value cap between every kind of value and the contracts', () => {
    const a = fresh(layoutWith({ caps: { eventsPerKind: 5, values: 3, sessions: 3, accountsPerEntity: 3 } }));
    a.apply(T0, [contractOp('ct-1', { startedAt: T0, role: 'client', counterpart: 'acct-2' })], 'contract');
    a.apply(T0 + 1, [device('dev-1')], 'login');
    a.apply(T0 + 2, [personalIp('81.2.69.142'), { op: 'value', kind: 'country', value: 'GB' }], 'login');
    expect(a.contractList()).toEqual([]);
    expect(a.capsReached.get('v')).toBe(T0 + 2);
    expect([...a.values.keys()].sort()).toEqual(['country', 'device', 'personalIp']);
  });
});

describe('sessions', () => {
  it('keeps a logged-out session closed whatever order its start and logout arrive in', () => {
    const a = fresh();
    const open = (x: AccountFeatures, at: number) => x.openSessions(at - 2 * HOUR).map((s) => s.sessionId);

    // in order, then the start again (a duplicate or a replay)
    a.apply(T0, [start('s-1', 'login-1')], 'login');
    a.apply(T0, [start('s-2', 'login-2')], 'login');
    expect(open(a, T0)).toEqual(['s-2', 's-1']);
    a.apply(T0 + 10 * MINUTE, [end('s-1')], 'login');
    a.apply(T0, [start('s-1', 'login-1')], 'login');
    expect(open(a, T0 + 10 * MINUTE)).toEqual(['s-2']);

    // the logout first: the same state as in order
    const inOrder = fresh(layoutWith(), 'acct-2');
    inOrder.apply(T0, [start('s-1', 'login-1')], 'login');
    inOrder.apply(T0 + 10 * MINUTE, [end('s-1')], 'login');
    const logoutFirst = fresh(layoutWith(), 'acct-2');
    logoutFirst.apply(T0 + 10 * MINUTE, [end('s-1')], 'login');
    logoutFirst.apply(T0, [start('s-1', 'login-1')], 'login');
    expect(open(logoutFirst, T0 + 10 * MINUTE)).toEqual([]);
    expect(bytes(logoutFirst)).toEqual(bytes(inOrder));

    // a session id used again after its logout opens a new session, the latest start winning
    a.apply(T0 + 20 * MINUTE, [start('s-1', 'login-3')], 'login');
    a.apply(T0 + 15 * MINUTE, [start('s-1', 'login-between')], 'login');
    expect(a.answer({ q: 'sessions', from: -HOUR }, T0 + 20 * MINUTE)).toEqual([
      { sessionId: 's-1', eventId: 'login-3', latitude: 51.5, longitude: -0.09, startedAt: T0 + 20 * MINUTE },
      { sessionId: 's-2', eventId: 'login-2', latitude: 51.5, longitude: -0.09, startedAt: T0 },
    ]);
  });

  it('forgets sessions and logouts older than the session retention', () => {
    const a = fresh();
    a.apply(T0, [start('s-1', 'login-1'), start('s-2', 'login-2')], 'login');
    a.apply(T0 + MINUTE, [end('s-2')], 'login');
    a.apply(T0 + 3 * HOUR, [start('s-3', 'login-3')], 'login');
    expect([...a.sessions.keys()]).toEqual(['s-3']);
    expect([...a.logouts.keys()]).toEqual(['s-2']);
    a.apply(T0 + 3 * HOUR + MINUTE, [start('s-4', 'login-4')], 'login');
    expect(a.logouts.size).toBe(0);
  });
});

describe('login memory', () => {
  it('keeps the latest two successful logins exactly as recorded, by time then event id, in any order', () => {
    const full: LoginRecord = {
      at: T0,
      eventId: 'login-2',
      ip: '2a02:d180::1',
      country: 'DE',
      city: 'Düsseldorf',
      latitude: 51.5,
      longitude: 10.5,
      accuracyKm: 100,
      anonymizer: false,
      hosting: false,
      deviceId: 'dev-1',
    };
    const bare: LoginRecord = {
      at: T0 - HOUR,
      eventId: 'login-1',
      ip: '1.2.3.4',
      anonymizer: true,
      hosting: true,
    };
    const latest: LoginRecord = { ...full, at: T0 + HOUR, eventId: 'login-3', anonymizer: true };
    const record = (x: AccountFeatures, l: LoginRecord) =>
      x.apply(l.at, [{ op: 'login', login: l }], 'login');
    const after = (...logins: LoginRecord[]) => {
      const a = fresh();
      for (const l of logins) record(a, l);
      return a;
    };

    const orders = [
      [bare, full, latest],
      [bare, latest, full],
      [full, bare, latest],
      [full, latest, bare],
      [latest, bare, full],
      [latest, full, bare],
    ];
    for (const order of orders) {
      // each also seen again: a replay changes nothing
      const a = after(...order, ...order);
      expect(a.lastLogin).toEqual(latest);
      expect(a.previousLogin).toEqual(full);
      expect(bytes(a)).toEqual(bytes(after(...orders[0]!)));
    }
    expect(after(bare, full).previousLogin).toEqual(bare);
    expect(after(full, bare).previousLogin).toEqual(bare);
    expect(after(full, full).previousLogin).toBeUndefined();
    expect(after(bare).lastLogin).toEqual(bare);
    // two logins at one time: the greater event id is the latest
    const tied = { ...bare, at: T0, eventId: 'login-9' };
    for (const pair of [
      [full, tied],
      [tied, full],
    ]) {
      const a = after(...pair);
      expect([a.lastLogin?.eventId, a.previousLogin?.eventId]).toEqual(['login-9', 'login-2']);
    }
  });
});

describe('contracts', () => {
  it('merges a contract: start and first payment the earliest, last payment, dispute and end the latest', () => {
    const patches: ContractPatch[] = [
      { role: 'freelancer', counterpart: 'c', startedAt: T0 },
      { firstPaidAt: T0 + DAY, lastPaidAt: T0 + DAY },
      { firstPaidAt: T0 + 8 * DAY, lastPaidAt: T0 + 8 * DAY },
      { disputedAt: T0 + 9 * DAY },
      { disputedAt: T0 + 3 * DAY },
      { endedAt: T0 + 10 * DAY, endEventId: 'end-b', rating: 2 },
      { endedAt: T0 + 10 * DAY, endEventId: 'end-a', rating: 5 },
      { endedAt: T0 + 5 * DAY, endEventId: 'end-z', rating: 1 },
    ];
    const expected = {
      contractId: 'ct',
      role: 'freelancer',
      counterpart: 'c',
      startedAt: T0,
      firstPaidAt: T0 + DAY,
      lastPaidAt: T0 + 8 * DAY,
      disputedAt: T0 + 9 * DAY,
      endedAt: T0 + 10 * DAY,
      // the latest end, then the greater event id: not whichever arrived last
      endEventId: 'end-b',
      rating: 2,
    };
    const merge = (ps: ContractPatch[]) =>
      ps.reduce<ContractRecord>((rec, p) => mergeContract(rec, 'ct', p), mergeContract(undefined, 'ct', {}));
    expect(merge(patches)).toEqual(expected);
    expect(merge([...patches].reverse())).toEqual(expected);
    expect(merge([...patches.slice(4), ...patches.slice(0, 4), ...patches])).toEqual(expected);
    // the same end twice: the greater rating
    expect(
      merge([
        { endedAt: T0, endEventId: 'end', rating: 4 },
        { endedAt: T0, endEventId: 'end', rating: 3 },
      ]),
    ).toMatchObject({ endEventId: 'end', rating: 4 });
  });

  it("two ends of one contract leave the latest end's event id and rating, in either order", () => {
    const step = (t: number, endEventId: string, rating?: number): [number, AccountOp[]] => [
      t,
      [
        contractOp('ctr', {
          role: 'freelancer',
          counterpart: 'c',
          endedAt: t,
          endEventId,
          ...(rating && { rating }),
        }),
      ],
    ];
    const early = step(T0, 'end-by-client', 5);
    const late = step(T0 + MINUTE, 'end-by-freelancer');
    const results = [
      [early, late],
      [late, early],
      [early, late, late, early],
    ].map((order) => {
      const a = fresh();
      for (const [at, ops] of order) a.apply(at, ops, 'contract');
      return bytes(a);
    });
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    const a = fresh();
    for (const [at, ops] of [late, early]) a.apply(at, ops, 'contract');
    expect(a.contractList()).toEqual([
      {
        contractId: 'ctr',
        role: 'freelancer',
        counterpart: 'c',
        endedAt: T0 + MINUTE,
        endEventId: 'end-by-freelancer',
      },
    ]);
  });
});

describe('signal memory, flags and reviews', () => {
  const obs = (o: Partial<StoredObservation>) => observation('login.failed_burst', o);

  it('replaces a remembered observation only with one that brings new evidence', () => {
    const a = fresh();
    a.apply(T0, [failed('f')], 'login');
    const first = obs({ observedAt: T0, evidenceEventIds: ['e1', 'e2'], summary: 'first' });
    a.rememberObservations(T0, [first], DAY);
    // the same evidence seen again (a replay, another order) changes nothing
    a.rememberObservations(
      T0,
      [obs({ observedAt: T0 + 1, evidenceEventIds: ['e2'], summary: 'again' })],
      DAY,
    );
    expect(a.observations.get('login.failed_burst')).toEqual(first);
    const more = obs({ observedAt: T0 + 2, evidenceEventIds: ['e2', 'e3'], summary: 'more' });
    a.rememberObservations(T0, [more], DAY);
    expect(a.observations.get('login.failed_burst')).toEqual(more);
  });

  it("forgets observations older than the correlation window, measured from the account's newest event", () => {
    const a = fresh();
    a.apply(T0, [failed('f')], 'login');
    const W = 3 * HOUR;
    a.rememberObservations(T0, [observation('ip.churn', { observedAt: T0 - W + 1 })], W);
    a.rememberObservations(T0, [observation('ip.anonymizer_share', { observedAt: T0 - W })], W);
    expect([...a.observations.keys()]).toEqual(['ip.churn']);
    // an earlier event's observations are judged against the newest event, not their own time
    a.rememberObservations(
      T0 - 5 * HOUR,
      [observation('payment.method_velocity', { observedAt: T0 - 5 * HOUR })],
      W,
    );
    expect([...a.observations.keys()]).toEqual(['ip.churn']);
    a.rememberObservations(T0 + 1, [], W);
    expect(a.observations.size).toBe(0);
  });

  it('closes only the open flag named, once; a cleared pattern keeps its latest end', () => {
    const a = fresh();
    const state = {
      flagId: 'ff-1',
      revision: 1,
      severity: 'high',
      score: 3,
      createdAt: T0,
      updatedAt: T0,
      signals: [],
    };
    a.openFlags.set('account_security', state);
    expect(a.closeFlag('account_security', 'ff-other')).toBeUndefined();
    expect(a.closeFlag('account_security', 'ff-1')).toEqual(state);
    expect(a.closeFlag('account_security', 'ff-1')).toBeUndefined();
    expect(a.openFlags.size).toBe(0);
    expect(a.flagGenerations.get('account_security')).toBe(1);
    a.clearPattern('account_security|login', T0 + 7 * DAY);
    a.clearPattern('account_security|login', T0 + DAY);
    expect(a.clearedPatterns.get('account_security|login')).toBe(T0 + 7 * DAY);
  });
});

/**
 * An event as the engine admits it: recognised by id and digest, else applied and, unless late,
 * remembered. Returns what recall() said.
 */
function admit(
  a: AccountFeatures,
  eventId: string,
  at: number,
  family: string,
  ops: AccountOp[],
  digest = `digest-${eventId}`,
) {
  const seen = a.recall(eventId, digest);
  if (seen === 'new' && !a.apply(at, ops, family).late) a.remember(eventId, at, family, digest);
  return seen;
}

describe('recognising events seen before', () => {
  const admitFailed = (a: AccountFeatures, id: string, at: number) => admit(a, id, at, 'login', [failed(id)]);

  it('tells a replay from a conflicting reuse of an id', () => {
    const a = fresh();
    expect(admitFailed(a, 'e-1', T0)).toBe('new');
    expect(admitFailed(a, 'e-1', T0)).toBe('replay');
    expect(a.recall('e-1', 'other content')).toBe('conflict');
    expect(a.seenEvent('e-1')).toEqual({ at: T0, family: 'login', digest: 'digest-e-1' });
    // kept by a digest of the id, not the id itself
    expect(a.seenEvents.has('e-1')).toBe(false);
  });

  it("forgets an id once its family's newest event is more than the lateness newer, not before", () => {
    const a = fresh();
    admitFailed(a, 'e-1', T0);
    admitFailed(a, 'e-2', T0 + HOUR);
    expect(a.recall('e-1', 'digest-e-1')).toBe('replay');
    // another family's newer events do not count
    admit(a, 'p-1', T0 + 10 * HOUR, 'payment', [{ op: 'event', kind: 'methodAdded', eventId: 'p-1' }]);
    expect(a.recall('e-1', 'digest-e-1')).toBe('replay');
    admitFailed(a, 'e-3', T0 + HOUR + 1);
    expect(a.recall('e-1', 'digest-e-1')).toBe('new');
    expect([...a.seenEvents.keys()].sort()).toEqual(['e-2', 'e-3', 'p-1'].map(digestOf).sort());
    // a replay that old is late: it changes nothing, and is not remembered again
    const before = bytes(a);
    expect(admitFailed(a, 'e-1', T0)).toBe('new');
    expect(bytes(a)).toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------
// Realistic events through the processors, applied as the engine applies them
// ---------------------------------------------------------------------------------------------

let geoip: GeoIp;
beforeAll(async () => {
  geoip = await GeoIp.open(shippedConfig().config.maxmind);
});

function enrich(events: ActivityEvent[]): EnrichedEvent[] {
  return events.map((e) => ({ ...e, geo: e.event.ip ? geoip.lookup(e.event.ip) : null }) as EnrichedEvent);
}

/**
 * The two reference scenarios (a travelling freelancer with a long contract, an account takeover)
 * and a second account sharing the takeover's IP, with a disputed contract between them, in time
 * order as the consumer sees each partition.
 */
function realisticEvents(): EnrichedEvent[] {
  const a = travellingFreelancer(T0 - 12 * DAY, 'unit');
  const b = accountTakeover(T0 - 2 * HOUR, 'unit');
  const mate = 'acct-mate';
  const base = { accountId: mate, deviceId: 'dev-m-1' };
  const extras: EnrichedEvent[] = [
    account({ ...base, at: T0 - 20 * DAY, accountType: 'CLIENT' }),
    ...[5, 3, 1].map((d) => login({ ...base, at: T0 - d * DAY + HOUR, sessionId: `sess-m-${d}` })),
    // a short session that ends with a logout, inside the allowed lateness of the newest login
    login({ ...base, at: T0 - 40 * MINUTE, sessionId: 'sess-m-0' }),
    login({ ...base, at: T0 - 30 * MINUTE, outcome: 'LOGOUT', sessionId: 'sess-m-0' }),
    ...(['STARTED', 'MILESTONE_PAID', 'DISPUTED'] as const).map((action, i) =>
      contract({
        accountId: mate,
        at: T0 - 3 * DAY + i * DAY,
        contractId: 'ctr-m',
        clientAccountId: mate,
        freelancerAccountId: b.accountId,
        action,
        ...(action === 'DISPUTED' && { disputeReason: 'NON_DELIVERY' as const }),
      }),
    ),
  ];
  const all = [...enrich([...a.phases.flat(), ...b.phases.flat()]), ...extras];
  return all
    .map((e, i) => ({ e, i }))
    .sort((x, y) => x.e.event.occurredAt - y.e.event.occurredAt || x.i - y.i)
    .map((x) => x.e);
}

/**
 * One event's changes as the engine makes them: every subject's ops (the other side of a contract
 * inline), each admitted by event id first unless `dedupe` is off.
 */
function applyEvent(
  accounts: Map<string, AccountFeatures>,
  layout: FeatureLayout,
  e: EnrichedEvent,
  dedupe = true,
) {
  const digest = contentDigest(e.family, e.event);
  for (const s of planEvent(e).subjects) {
    let f = accounts.get(s.accountId);
    if (!f) accounts.set(s.accountId, (f = new AccountFeatures(s.accountId, layout)));
    if (dedupe) admit(f, e.event.eventId, e.event.occurredAt, e.family, s.ops, digest);
    else f.apply(e.event.occurredAt, s.ops, e.family);
  }
}
const encodedAll = (accounts: Map<string, AccountFeatures>) =>
  new Map([...accounts].map(([id, f]) => [id, bytes(f)]));

/** A deterministic shuffle (mulberry32), so a failure can be reproduced. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('replay', () => {
  it('applying every event again, in order and shuffled, leaves every account byte-identical', () => {
    const { layout } = shippedPolicy();
    const events = realisticEvents();
    for (const dedupe of [false, true]) {
      const accounts = new Map<string, AccountFeatures>();
      for (const e of events) applyEvent(accounts, layout, e, dedupe);
      const first = encodedAll(accounts);
      expect(first.size).toBe(4);

      for (const e of events) applyEvent(accounts, layout, e, dedupe);
      expect(encodedAll(accounts)).toEqual(first);
      // a replay after a rebalance: families interleave arbitrarily
      for (const seed of [1, 2, 3]) {
        for (const e of shuffled(events, seed)) applyEvent(accounts, layout, e, dedupe);
        expect(encodedAll(accounts)).toEqual(first);
      }
    }
  });

  it('the features are rich enough for the replay to mean something', () => {
    const { layout } = shippedPolicy();
    const accounts = new Map<string, AccountFeatures>();
    for (const e of realisticEvents()) applyEvent(accounts, layout, e);
    const takeover = [...accounts.values()].find((f) => f.accountId.startsWith('acct-takeover'))!;
    const t = takeover.watermark;
    expect(t).toBe(T0 - 2 * HOUR + 70 * MINUTE + 5_000);
    // twelve failed logins 40-55 minutes after its t0, the newest event 70 minutes after: all in 1h
    expect(counted(takeover, count('loginFailed', HOUR), t).n).toBe(12);
    expect(counted(takeover, count('methodAdded', DAY), t).n).toBe(2);
    expect(takeover.distinct('device', t - 90 * DAY, 20).values).toEqual(['dev-x-unknown', 'dev-b-phone']);
    expect(takeover.context.identityVerified).toBe(true);
    expect(takeover.contractList()).toMatchObject([
      { contractId: 'ctr-m', counterpart: 'acct-mate', role: 'freelancer' },
    ]);
    expect(takeover.events.get('nonDeliveryDispute')?.size).toBe(1);
    const mate = accounts.get('acct-mate')!;
    // the logout closed its session; the others are older than the session retention
    expect(mate.openSessions(0)).toEqual([]);
    expect(mate.logouts.has('sess-m-0')).toBe(true);
  });

  it('through the engine: the same events again leave every stored account byte-identical', async () => {
    const p = new MemoryPipeline();
    const events = realisticEvents();
    await p.feed(events, 7);
    const first = new Map(p.backend.accounts);
    expect(first.size).toBe(4);
    // the reference takeover is flagged: flag state and signal memory are part of what is compared
    const flags = p.flags.length;
    expect(flags).toBeGreaterThan(0);
    await p.feed(events, 5);
    await p.feed(shuffled(events, 7), 11);
    // nothing new to say, and nothing changed
    expect(p.flags.length).toBe(flags);
    expect(new Map(p.backend.accounts)).toEqual(first);
  });
});
