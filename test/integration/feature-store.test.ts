// The feature store against a real Redis: exact windows, lateness per family, idempotent replay,
// bounded keys (TTL and caps), shared entities, first-seen novelty, one hash slot per account,
// and the read-only explain call. Every test writes under its own key prefix.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planEvent } from '../../processors/registry.js';
import type { ActivityEvent, EnrichedEvent } from '../../src/domain/events.js';
import { queriesFor } from '../../src/engine/engine.js';
import { compilePolicy, type Policy } from '../../src/engine/policy.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import {
  EVENT_KINDS,
  queryKey,
  type AccountOp,
  type AccountQuery,
  type CountResult,
  type DistinctResult,
  type EventKind,
  type LoginRecord,
  type SessionRecord,
} from '../../src/features/model.js';
import { FeatureStore, type StoreLayout } from '../../src/features/store.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { accountTakeover, travellingFreelancer } from '../../src/scenarios/reference.js';
import { endpoints } from '../support/endpoints.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Event time of the tests: a fixed instant, so windows are about event time, never the clock. */
const T0 = Date.UTC(2026, 0, 12, 12);

const RUN = `ffit-store-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
let redis: Redis;
let testNo = 0;

/** A key prefix no other test (or test run) writes under. */
function uniquePrefix(): string {
  return `${RUN}-${++testNo}`;
}

function layoutFor(keyPrefix: string, over: Partial<StoreLayout> = {}): StoreLayout {
  const events = Object.fromEntries(Object.keys(EVENT_KINDS).map((k) => [k, DAY])) as Record<
    EventKind,
    number
  >;
  return {
    keyPrefix,
    allowedLatenessMs: HOUR,
    eventRetentionMs: events,
    valueRetentionMs: 90 * DAY,
    sessionRetentionMs: 3 * HOUR,
    entityRetentionMs: { ip: 7 * DAY + HOUR, device: 30 * DAY, instrument: 90 * DAY },
    caps: { eventsPerKind: 500, values: 256, sessions: 32, accountsPerEntity: 200 },
    ...over,
  };
}

/** The layout the default config compiles to, under a test's own prefix. */
function realisticPolicy(keyPrefix: string): Policy {
  const policy = compilePolicy(loadConfig({ env: {} }));
  return { ...policy, layout: { ...policy.layout, keyPrefix } };
}

async function scanKeys(pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return [...new Set(keys)].sort();
}
const keysUnder = (prefix: string) => scanKeys(`${prefix}:*`);

/** Every key under the prefix with its full contents, read member by member (no DUMP). */
async function contentsUnder(prefix: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of await keysUnder(prefix)) {
    const type = await redis.type(key);
    if (type === 'zset') out[key] = { zset: await redis.zrange(key, 0, -1, 'WITHSCORES') };
    else if (type === 'hash') out[key] = { hash: Object.entries(await redis.hgetall(key)).sort() };
    else out[key] = { [type]: await redis.get(key) };
  }
  return out;
}

const count = (kind: EventKind, windowMs: number, maxIds = 20): AccountQuery => ({
  q: 'count',
  kind,
  from: -windowMs,
  to: 0,
  maxIds,
});
const failed = (eventId: string): AccountOp => ({ op: 'event', kind: 'loginFailed', eventId });

function countOf(snap: { results: Map<string, unknown> }, q: AccountQuery): CountResult {
  const r = snap.results.get(queryKey(q));
  if (!r) throw new Error(`no answer for ${queryKey(q)}`);
  return r as CountResult;
}
function distinctOf(snap: { results: Map<string, unknown> }, q: AccountQuery): DistinctResult {
  const r = snap.results.get(queryKey(q));
  if (!r) throw new Error(`no answer for ${queryKey(q)}`);
  return r as DistinctResult;
}

beforeAll(async () => {
  redis = new Redis(endpoints().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

afterAll(async () => {
  const mine = await scanKeys(`${RUN}-*`);
  if (mine.length) await redis.del(...mine);
  redis.disconnect();
});

describe('sliding windows over event time', () => {
  it('counts (t-W, t]: an event exactly one window old is out, one ms younger is in', async () => {
    const store = new FeatureStore(redis, layoutFor(uniquePrefix()));
    const W = 15 * MINUTE;
    await store.applyAccount('acct-1', T0 - W, [failed('exactly-W-old')], [], false, 'login');
    await store.applyAccount('acct-1', T0 - W + 1, [failed('one-ms-younger')], [], false, 'login');
    const snap = await store.applyAccount(
      'acct-1',
      T0,
      [failed('now')],
      [count('loginFailed', W)],
      false,
      'login',
    );
    expect(countOf(snap, count('loginFailed', W))).toEqual({ n: 2, ids: ['now', 'one-ms-younger'] });
    // the old one was kept, the window excluded it: one ms wider and it is in
    const wider = await store.applyAccount('acct-1', T0, [], [count('loginFailed', W + 1)], true);
    expect(countOf(wider, count('loginFailed', W + 1)).ids).toEqual([
      'now',
      'one-ms-younger',
      'exactly-W-old',
    ]);

    // the upper edge is inclusive and later events are not in a window that ends at t
    await store.applyAccount('acct-1', T0 + 1, [failed('after')], [], false, 'login');
    const at = await store.applyAccount('acct-1', T0, [], [count('loginFailed', W)], true);
    expect(countOf(at, count('loginFailed', W)).ids).toEqual(['now', 'one-ms-younger']);
  });
});

describe('counted-only kinds', () => {
  it('counts each session event once by a digest of its id, and refuses to list them', async () => {
    const prefix = uniquePrefix();
    const store = new FeatureStore(redis, layoutFor(prefix));
    const sessions = count('session', HOUR, 0);
    const ids = ['0c592c0b-05f3-406c-9bf4-fae32486263d', '2b702213-bd72-4252-97f9-e9b68c1849d3'];
    for (const eventId of [...ids, ids[0]!]) {
      await store.applyAccount('acct-1', T0, [{ op: 'event', kind: 'session', eventId }], [], false, 'ip');
    }
    const snap = await store.applyAccount('acct-1', T0, [], [sessions], true);
    expect(countOf(snap, sessions)).toEqual({ n: 2, ids: [] });
    const members = await redis.zrange(
      store.accountKeys('acct-1').find((k) => k.endsWith(':e:S'))!,
      0,
      -1,
    );
    expect(members).toHaveLength(2);
    for (const m of members) expect(m).toMatch(/^[\w-]{11}$/);
    await expect(store.applyAccount('acct-1', T0, [], [count('session', HOUR, 1)], true)).rejects.toThrow(
      /only counted/,
    );
  });
});

describe('lateness', () => {
  it('counts an out-of-order event inside the allowed lateness', async () => {
    const store = new FeatureStore(redis, layoutFor(uniquePrefix()));
    const W = 15 * MINUTE;
    await store.applyAccount('acct-1', T0, [failed('f-now')], [], false, 'login');
    const snap = await store.applyAccount(
      'acct-1',
      T0 - 10 * MINUTE,
      [failed('f-10m-earlier')],
      [count('loginFailed', W)],
      false,
      'login',
    );
    expect(snap.late).toBe(false);
    // windows are measured from the event's own time, and the watermark stays where it was
    expect(snap.asOf).toBe(T0 - 10 * MINUTE);
    expect(snap.watermark).toBe(T0);
    expect(countOf(snap, count('loginFailed', W)).n).toBe(1);
    const now = await store.applyAccount('acct-1', T0, [], [count('loginFailed', W)], true);
    expect(countOf(now, count('loginFailed', W)).ids).toEqual(['f-now', 'f-10m-earlier']);
  });

  it('ignores windowed changes beyond the lateness but still applies context', async () => {
    const prefix = uniquePrefix();
    const store = new FeatureStore(redis, layoutFor(prefix));
    const W = 3 * HOUR;
    // the account family's watermark moves with events that carry network facts
    await store.applyAccount(
      'acct-1',
      T0,
      [
        { op: 'event', kind: 'anonymizedSession', eventId: 'sess-now' },
        { op: 'value', kind: 'personalIp', value: '81.2.69.142' },
      ],
      [],
      false,
      'account',
    );
    const before = await contentsUnder(prefix);
    const beforeKeys = Object.keys(before).filter((k) => !k.endsWith(':h'));

    const late = await store.applyAccount(
      'acct-1',
      T0 - HOUR - 1,
      [
        { op: 'event', kind: 'anonymizedSession', eventId: 'sess-late' },
        { op: 'value', kind: 'personalIp', value: '216.160.83.56' },
        { op: 'context', field: 'createdAt', value: String(T0 - 400 * DAY) },
        { op: 'context', field: 'identity', value: '1' },
        { op: 'context', field: 'stats', value: '25|1200|' },
      ],
      [count('anonymizedSession', W), { q: 'distinct', kind: 'personalIp', from: -W, maxValues: 10 }],
      false,
      'account',
    );
    expect(late.late).toBe(true);
    expect(late.watermark).toBe(T0);
    // the late event's own window (T0-4h, T0-1h-1ms] sees nothing: its session was not recorded
    expect(countOf(late, count('anonymizedSession', W)).n).toBe(0);
    // distinct values run from t-W on (last-seen times only move forward): the late IP is absent
    expect(distinctOf(late, { q: 'distinct', kind: 'personalIp', from: -W, maxValues: 10 }).values).toEqual([
      '81.2.69.142',
    ]);
    // context fields: the latest event time wins, and lateness does not apply
    expect(late.context).toEqual({
      createdAt: T0 - 400 * DAY,
      identityVerified: true,
      identityChangedAt: T0 - HOUR - 1,
      lifetimeCompletedContracts: 25,
      lifetimePaidHours: 1200,
    });

    const after = await contentsUnder(prefix);
    for (const key of beforeKeys) expect(after[key], key).toEqual(before[key]);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    const now = await store.applyAccount('acct-1', T0, [], [count('anonymizedSession', W)], true);
    expect(countOf(now, count('anonymizedSession', W)).ids).toEqual(['sess-now']);
  });

  it('judges lateness per family: a login far behind the newest contract event is not late', async () => {
    const prefix = uniquePrefix();
    const { layout } = realisticPolicy(prefix);
    const store = new FeatureStore(redis, layout);
    const W = 15 * MINUTE;
    await store.applyAccount(
      'acct-1',
      T0,
      [
        {
          op: 'contract',
          contractId: 'ct-1',
          patch: { role: 'freelancer', counterpart: 'acct-2', startedAt: T0 },
        },
        { op: 'event', kind: 'milestonePaid', eventId: 'paid-1' },
        { op: 'value', kind: 'device', value: 'dev-1', noveltyName: 'device' },
      ],
      [],
      false,
      'contract',
    );
    // the login topic lags five hours behind the contract topic (a backlog): not late for logins
    const lag = 5 * HOUR;
    await store.applyAccount('acct-1', T0 - lag - MINUTE, [failed('f-1')], [], false, 'login');
    const snap = await store.applyAccount(
      'acct-1',
      T0 - lag,
      [
        failed('f-2'),
        { op: 'event', kind: 'session', eventId: 'login-1' },
        { op: 'sessionStart', sessionId: 's-1', latitude: 51.5, longitude: -0.09, eventId: 'login-1' },
      ],
      [count('loginFailed', W), { q: 'sessions', from: -2 * HOUR }],
      false,
      'login',
    );
    expect(snap.late).toBe(false);
    expect(snap.watermark).toBe(T0);
    expect(countOf(snap, count('loginFailed', W)).ids).toEqual(['f-2', 'f-1']);
    expect((snap.results.get('sessions|-7200000') as SessionRecord[]).map((s) => s.sessionId)).toEqual([
      's-1',
    ]);

    // the contract family keeps its own watermark: one hour and a bit behind it is late
    const contractLate = await store.applyAccount(
      'acct-1',
      T0 - HOUR - 1,
      [{ op: 'event', kind: 'milestonePaid', eventId: 'paid-late' }],
      [count('milestonePaid', DAY)],
      false,
      'contract',
    );
    expect(contractLate.late).toBe(true);
    expect(countOf(contractLate, count('milestonePaid', DAY)).n).toBe(0);

    // without a family, lateness is judged against the account's newest event of any family
    const global = await store.applyAccount('acct-1', T0 - lag, [failed('f-3')], [], false);
    expect(global.late).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Realistic events through the processors, applied as the engine applies them
// ---------------------------------------------------------------------------------------------

let geoip: GeoIp | undefined;
async function enrich(events: ActivityEvent[]): Promise<EnrichedEvent[]> {
  geoip ??= await GeoIp.open(loadConfig({ env: {} }).config.maxmind);
  const g = geoip;
  return events.map((e) => ({ ...e, geo: e.event.ip ? g.lookup(e.event.ip) : null }) as EnrichedEvent);
}

/** One event's store calls, as Engine.apply makes them (one per subject and entity, pipelined). */
async function applyEvent(store: FeatureStore, policy: Policy, e: EnrichedEvent): Promise<void> {
  const plan = planEvent(e);
  const at = e.event.occurredAt;
  const calls: Promise<unknown>[] = [];
  const entityWindow = new Map<string, number>();
  for (const sp of plan.subjects) {
    const signals = policy.signals.filter((s) => s.definition.triggeredBy(e, sp.role));
    for (const { definition, params } of signals) {
      const need = definition.needs(params).entity;
      if (need) entityWindow.set(need.type, Math.max(entityWindow.get(need.type) ?? 0, need.windowMs));
    }
    calls.push(store.applyAccount(sp.accountId, at, sp.ops, queriesFor(signals), false, e.family));
  }
  for (const en of plan.entities) {
    calls.push(
      store.applyEntity(en.type, en.id, at, en.addAccount, {
        from: -(entityWindow.get(en.type) ?? 0),
        maxIds: 20,
      }),
    );
  }
  await Promise.all(calls);
}

/** A deterministic shuffle (mulberry32), so a failure can be reproduced. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
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

/**
 * The two reference scenarios (a travelling freelancer with a long contract, an account takeover)
 * and a second account sharing the takeover's IP and card, with a disputed contract between them.
 */
async function realisticEvents(runId: string): Promise<EnrichedEvent[]> {
  const t0 = T0 - 12 * DAY;
  const a = travellingFreelancer(t0, runId);
  const b = accountTakeover(T0 - 2 * HOUR, runId);
  const mate = `acct-mate-${runId}`;
  const me = b.accountId;
  let n = 0;
  const id = () => `evt-m-${runId}-${++n}`;
  const base = { accountId: mate, deviceId: 'dev-m-1' };
  const extras: ActivityEvent[] = [
    {
      family: 'account',
      event: {
        ...base,
        eventId: id(),
        occurredAt: T0 - 20 * DAY,
        action: 'CREATED',
        accountType: 'CLIENT',
        lifetimeCompletedContracts: null,
        lifetimePaidHours: null,
        lifetimeEarnings: null,
        ip: '216.160.83.57',
      },
    },
    ...[5, 3, 1].map((d): ActivityEvent => ({
      family: 'login',
      event: {
        ...base,
        eventId: id(),
        occurredAt: T0 - d * DAY + HOUR,
        outcome: 'SUCCESS',
        ip: '216.160.83.56',
        sessionId: `sess-m-${d}`,
      },
    })),
    // a short session that ends with a logout, inside the allowed lateness of the newest login
    ...(['SUCCESS', 'LOGOUT'] as const).map((outcome, i): ActivityEvent => ({
      family: 'login',
      event: {
        ...base,
        eventId: id(),
        occurredAt: T0 - 40 * MINUTE + i * 10 * MINUTE,
        outcome,
        ip: '216.160.83.56',
        sessionId: 'sess-m-0',
      },
    })),
    {
      family: 'ip',
      event: {
        ...base,
        eventId: id(),
        occurredAt: T0 - DAY + 2 * HOUR,
        ip: '1.2.3.4',
        source: 'web',
        sessionId: null,
      },
    },
    {
      family: 'payment',
      event: {
        ...base,
        eventId: id(),
        occurredAt: T0 - 10 * MINUTE,
        action: 'ADDED',
        methodId: 'pm-m1',
        methodType: 'CARD',
        instrumentFingerprint: `fp-x1-${runId}`,
        ip: '216.160.83.56',
      },
    },
    ...(['STARTED', 'MILESTONE_PAID', 'DISPUTED'] as const).map((action, i): ActivityEvent => ({
      family: 'contract',
      event: {
        eventId: id(),
        accountId: mate,
        occurredAt: T0 - 3 * DAY + i * DAY,
        contractId: `ctr-m-${runId}`,
        clientAccountId: mate,
        freelancerAccountId: me,
        action,
        amount: action === 'MILESTONE_PAID' ? 300 : null,
        currency: action === 'MILESTONE_PAID' ? 'USD' : null,
        rating: null,
        disputeReason: action === 'DISPUTED' ? 'NON_DELIVERY' : null,
        ip: '216.160.83.56',
        deviceId: 'dev-m-1',
      },
    })),
  ];
  const all = [...a.phases.flat(), ...b.phases.flat(), ...extras];
  // time order, as the consumer sees each partition (stable for equal times)
  return enrich(
    all
      .map((e, i) => ({ e, i }))
      .sort((x, y) => x.e.event.occurredAt - y.e.event.occurredAt || x.i - y.i)
      .map((x) => x.e),
  );
}

describe('replay', () => {
  it('applying every event again, in order and shuffled, leaves every key exactly as it was', async () => {
    const prefix = uniquePrefix();
    const policy = realisticPolicy(prefix);
    const store = new FeatureStore(redis, policy.layout);
    const events = await realisticEvents(prefix);
    for (const e of events) await applyEvent(store, policy, e);
    const first = await contentsUnder(prefix);
    expect(Object.keys(first).length).toBeGreaterThan(20);

    for (const e of events) await applyEvent(store, policy, e);
    expect(await contentsUnder(prefix)).toEqual(first);

    // a replay after a rebalance: families interleave arbitrarily, all pipelined at once
    await Promise.all(shuffled(events, 1).map((e) => applyEvent(store, policy, e)));
    expect(await contentsUnder(prefix)).toEqual(first);
  });
});

describe('sessions', () => {
  it('keeps a logged-out session closed whatever order its start and logout arrive in', async () => {
    const store = new FeatureStore(redis, layoutFor(uniquePrefix()));
    const open = async (account: string, at: number) => {
      const snap = await store.applyAccount(account, at, [], [{ q: 'sessions', from: -2 * HOUR }], true);
      return (snap.results.get('sessions|-7200000') as SessionRecord[]).map((s) => s.sessionId);
    };
    const start = (sessionId: string, eventId: string): AccountOp => ({
      op: 'sessionStart',
      sessionId,
      latitude: 51.5,
      longitude: -0.09,
      eventId,
    });
    const end = (sessionId: string): AccountOp => ({ op: 'sessionEnd', sessionId });
    const apply = (account: string, at: number, op: AccountOp) =>
      store.applyAccount(account, at, [op], [], false, 'login');

    // in order, then the start again (a duplicate or a replay)
    await apply('acct-1', T0, start('s-1', 'login-1'));
    await apply('acct-1', T0, start('s-2', 'login-2'));
    expect(await open('acct-1', T0)).toEqual(['s-2', 's-1']);
    await apply('acct-1', T0 + 10 * MINUTE, end('s-1'));
    await apply('acct-1', T0, start('s-1', 'login-1'));
    expect(await open('acct-1', T0 + 10 * MINUTE)).toEqual(['s-2']);

    // the logout first
    await apply('acct-2', T0 + 10 * MINUTE, end('s-1'));
    await apply('acct-2', T0, start('s-1', 'login-1'));
    expect(await open('acct-2', T0 + 10 * MINUTE)).toEqual([]);

    // a session id used again after its logout opens a new session
    await apply('acct-1', T0 + 20 * MINUTE, start('s-1', 'login-3'));
    const snap = await store.applyAccount(
      'acct-1',
      T0 + 20 * MINUTE,
      [],
      [{ q: 'sessions', from: -HOUR }],
      true,
    );
    expect(snap.results.get('sessions|-3600000')).toEqual([
      { sessionId: 's-1', eventId: 'login-3', latitude: 51.5, longitude: -0.09, startedAt: T0 + 20 * MINUTE },
      { sessionId: 's-2', eventId: 'login-2', latitude: 51.5, longitude: -0.09, startedAt: T0 },
    ]);

    // a session's details live in the account's hash exactly as long as the session is in the set
    const [hKey, , sKey] = store.accountKeys('acct-1');
    const details = async () => (await redis.hkeys(hKey!)).filter((f) => f.startsWith('s:')).sort();
    expect(await details()).toEqual(['s:s-1', 's:s-2']);
    // and the set expiring before the hash leaves none behind
    await redis.del(sKey!);
    await apply('acct-1', T0 + 30 * MINUTE, start('s-3', 'login-4'));
    expect(await details()).toEqual(['s:s-3']);
  });
});

describe('login memory', () => {
  it('keeps the latest two successful logins exactly as recorded; an older one arriving late changes nothing', async () => {
    const store = new FeatureStore(redis, layoutFor(uniquePrefix()));
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
    const login = (l: LoginRecord) =>
      store.applyAccount('acct-1', l.at, [{ op: 'login', login: l }], [], false, 'login');

    await login(full);
    await login(bare); // older: not the latest, and not in front of the latest either
    let snap = await login(full);
    expect(snap.lastLogin).toEqual(full);
    expect(snap.previousLogin).toBeUndefined();
    snap = await login(latest);
    expect(snap.lastLogin).toEqual(latest);
    expect(snap.previousLogin).toEqual(full);

    const other = await store.applyAccount(
      'acct-2',
      bare.at,
      [{ op: 'login', login: bare }],
      [],
      false,
      'login',
    );
    expect(other.lastLogin).toEqual(bare);
  });
});

describe('bounded memory', () => {
  it('gives every key a TTL no longer than the longest retention of its kind', async () => {
    const prefix = uniquePrefix();
    const policy = realisticPolicy(prefix);
    const store = new FeatureStore(redis, policy.layout);
    for (const e of await realisticEvents(prefix)) await applyEvent(store, policy, e);
    const l = policy.layout;
    const accountMax = Math.max(
      l.valueRetentionMs,
      l.sessionRetentionMs,
      ...Object.values(l.eventRetentionMs),
    );
    const keys = await keysUnder(prefix);
    expect(keys.length).toBeGreaterThan(20);
    const kinds = new Set<string>();
    for (const key of keys) {
      const tag = /\{(.)/.exec(key)![1]!;
      kinds.add(key.slice(key.indexOf('}') + 2));
      const max =
        tag === 'a'
          ? accountMax
          : l.entityRetentionMs[({ i: 'ip', d: 'device', p: 'instrument' } as const)[tag as 'i' | 'd' | 'p']];
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(max);
    }
    // every account key kind and entity key was written, so every kind was checked
    expect([...kinds].sort()).toEqual(
      ['a', 'c', 'h', 'n', 's', 'v', ...Object.values(EVENT_KINDS).map((c) => `e:${c}`)].sort(),
    );
  });

  it('lets keys of a short layout expire', async () => {
    const prefix = uniquePrefix();
    const ms = 150;
    const events = Object.fromEntries(Object.keys(EVENT_KINDS).map((k) => [k, ms])) as Record<
      EventKind,
      number
    >;
    const store = new FeatureStore(
      redis,
      layoutFor(prefix, {
        eventRetentionMs: events,
        valueRetentionMs: ms,
        sessionRetentionMs: ms,
        entityRetentionMs: { ip: ms, device: ms, instrument: ms },
        caps: { eventsPerKind: 500, values: 256, sessions: 32, accountsPerEntity: 1 },
      }),
    );
    const ops: AccountOp[] = [
      ...Object.keys(EVENT_KINDS).map((kind): AccountOp => ({
        op: 'event',
        kind: kind as EventKind,
        eventId: `e-${kind}`,
      })),
      { op: 'value', kind: 'device', value: 'dev-1', noveltyName: 'device' },
      { op: 'sessionStart', sessionId: 's-1', latitude: 1, longitude: 2, eventId: 'e-session' },
      { op: 'contract', contractId: 'ct-1', patch: { role: 'client', counterpart: 'acct-2', startedAt: T0 } },
      { op: 'context', field: 'createdAt', value: String(T0) },
    ];
    await store.applyAccount('acct-1', T0, ops, [], false, 'login');
    await store.applyEntity('ip', '203.0.113.9', T0, 'acct-1', { from: -ms, maxIds: 5 });
    await store.applyEntity('ip', '203.0.113.9', T0, 'acct-2', { from: -ms, maxIds: 5 }); // cap marker
    const keys = [...store.accountKeys('acct-1'), ...store.entityKeys('ip', '203.0.113.9')];
    expect(await redis.exists(...keys)).toBe(keys.length);
    await new Promise((r) => setTimeout(r, 3 * ms));
    // EXISTS expires lazily, so it never counts a key past its TTL
    expect(await redis.exists(...keys)).toBe(0);
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('keeps only the newest members past a cap, and says so', async () => {
    const prefix = uniquePrefix();
    const store = new FeatureStore(
      redis,
      layoutFor(prefix, { caps: { eventsPerKind: 5, values: 4, sessions: 3, accountsPerEntity: 3 } }),
    );
    for (let i = 1; i <= 8; i++) {
      await store.applyAccount(
        'acct-1',
        T0 + i * SECOND,
        [
          failed(`f-${i}`),
          { op: 'value', kind: 'device', value: `dev-${i}`, noveltyName: 'device' },
          { op: 'sessionStart', sessionId: `s-${i}`, latitude: 0, longitude: 0, eventId: `l-${i}` },
        ],
        [],
        false,
        'login',
      );
    }
    const devices = { q: 'distinct', kind: 'device', from: -DAY, maxValues: 20 } as const;
    const snap = await store.applyAccount(
      'acct-1',
      T0 + 8 * SECOND,
      [],
      [count('loginFailed', DAY), devices, { q: 'sessions', from: -HOUR }],
      true,
    );
    expect(countOf(snap, count('loginFailed', DAY))).toEqual({
      n: 5,
      ids: ['f-8', 'f-7', 'f-6', 'f-5', 'f-4'],
    });
    expect(distinctOf(snap, devices)).toEqual({ n: 4, values: ['dev-8', 'dev-7', 'dev-6', 'dev-5'] });
    expect((snap.results.get('sessions|-3600000') as SessionRecord[]).map((s) => s.sessionId)).toEqual([
      's-8',
      's-7',
      's-6',
    ]);
    expect(Object.fromEntries(snap.capsReached)).toEqual({
      loginFailed: T0 + 8 * SECOND,
      v: T0 + 8 * SECOND,
      s: T0 + 8 * SECOND,
    });
    // a session dropped by the cap takes its details with it
    const hFields = await redis.hkeys(store.accountKeys('acct-1')[0]!);
    expect(hFields.filter((f) => f.startsWith('s:')).sort()).toEqual(['s:s-6', 's:s-7', 's:s-8']);
    // a value dropped by the cap is forgotten everywhere, first sighting included
    const [base] = store.accountKeys('acct-1');
    const nKey = base!.replace(/:h$/, ':n');
    expect(await redis.zrange(nKey, 0, -1)).toEqual(['d:dev-5', 'd:dev-6', 'd:dev-7', 'd:dev-8']);

    for (let i = 1; i <= 5; i++) {
      await store.applyEntity('ip', '203.0.113.7', T0 + i * SECOND, `acct-${i}`, { from: -DAY, maxIds: 10 });
    }
    const ip = await store.applyEntity(
      'ip',
      '203.0.113.7',
      T0 + 5 * SECOND,
      undefined,
      { from: -DAY, maxIds: 10 },
      true,
    );
    expect(ip.accounts).toEqual({ n: 3, values: ['acct-5', 'acct-4', 'acct-3'] });
    expect(ip.capped).toBe(true);
    const quiet = await store.applyEntity('ip', '203.0.113.8', T0, 'acct-1', { from: -DAY, maxIds: 10 });
    expect(quiet.capped).toBe(false);
  });
});

describe('shared entities', () => {
  it('counts distinct accounts per IP, device and instrument in the window', async () => {
    const store = new FeatureStore(redis, layoutFor(uniquePrefix()));
    const W = 7 * DAY;
    const q = { from: -W, maxIds: 10 };
    // an account last seen exactly one window ago is out; seeing an account twice counts it once
    await store.applyEntity('ip', '203.0.113.5', T0 - W, 'acct-old', q);
    await store.applyEntity('ip', '203.0.113.5', T0 - 3 * DAY, 'acct-a', q);
    await store.applyEntity('ip', '203.0.113.5', T0 - 2 * DAY, 'acct-b', q);
    await store.applyEntity('ip', '203.0.113.5', T0 - HOUR, 'acct-c', q);
    const ip = await store.applyEntity('ip', '203.0.113.5', T0, 'acct-a', q);
    expect(ip).toEqual({
      type: 'ip',
      id: '203.0.113.5',
      accounts: { n: 3, values: ['acct-a', 'acct-c', 'acct-b'] },
      capped: false,
    });
    // an out-of-order sighting does not move an account's last-seen time back
    await store.applyEntity('ip', '203.0.113.5', T0 - 6 * DAY, 'acct-c', q);
    const again = await store.applyEntity(
      'ip',
      '203.0.113.5',
      T0,
      undefined,
      { from: -HOUR - 1, maxIds: 10 },
      true,
    );
    expect(again.accounts.values).toEqual(['acct-a', 'acct-c']);

    await store.applyEntity('device', 'dev-shared', T0 - DAY, 'acct-a', { from: -30 * DAY, maxIds: 10 });
    const dev = await store.applyEntity('device', 'dev-shared', T0, 'acct-b', {
      from: -30 * DAY,
      maxIds: 10,
    });
    expect(dev.accounts).toEqual({ n: 2, values: ['acct-b', 'acct-a'] });
    // entities of different types never mix, even with the same id
    const other = await store.applyEntity(
      'instrument',
      'dev-shared',
      T0,
      undefined,
      { from: -W, maxIds: 10 },
      true,
    );
    expect(other.accounts.n).toBe(0);

    for (const [i, acct] of ['acct-a', 'acct-b', 'acct-c'].entries()) {
      await store.applyEntity('instrument', 'fp-1', T0 + i, acct, { from: -90 * DAY, maxIds: 2 });
    }
    const card = await store.applyEntity(
      'instrument',
      'fp-1',
      T0 + 2,
      undefined,
      { from: -90 * DAY, maxIds: 2 },
      true,
    );
    expect(card.accounts).toEqual({ n: 3, values: ['acct-c', 'acct-b'] });
  });
});

describe('novelty', () => {
  it('returns when each value was last and first seen, as stored before the event', async () => {
    const store = new FeatureStore(redis, layoutFor(uniquePrefix()));
    const device = (v: string): AccountOp => ({
      op: 'value',
      kind: 'device',
      value: v,
      noveltyName: 'device',
    });
    const ip = (v: string): AccountOp => ({ op: 'value', kind: 'personalIp', value: v });
    const seen = (at: number, ops: AccountOp[]) =>
      store.applyAccount('acct-1', at, ops, [], false, 'login').then((s) => s.lastSeenBefore);

    expect(await seen(T0, [device('dev-1'), ip('81.2.69.142')])).toEqual([{}, {}]);
    expect(await seen(T0 + HOUR, [device('dev-1'), ip('81.2.69.142')])).toEqual([
      { last: T0, first: T0 },
      { last: T0 },
    ]);
    // an earlier sighting arriving late moves first-seen back, never last-seen
    expect(await seen(T0 + 30 * MINUTE, [device('dev-1')])).toEqual([{ last: T0 + HOUR, first: T0 }]);
    expect(await seen(T0 + 2 * HOUR, [device('dev-1'), device('dev-2')])).toEqual([
      { last: T0 + HOUR, first: T0 },
      {},
    ]);
    await seen(T0 + 2 * HOUR - 59 * MINUTE, [device('dev-1')]);
    expect(await seen(T0 + 3 * HOUR, [device('dev-1')])).toEqual([{ last: T0 + 2 * HOUR, first: T0 }]);
    // a late event reads what is stored and changes nothing
    expect(await seen(T0, [device('dev-3'), device('dev-1')])).toEqual([
      {},
      { last: T0 + 3 * HOUR, first: T0 },
    ]);
    expect(await seen(T0 + 4 * HOUR, [device('dev-3')])).toEqual([{}]);
  });
});

// ---------------------------------------------------------------------------------------------
// Redis Cluster: one slot per account and per entity
// ---------------------------------------------------------------------------------------------

/** CRC16/XMODEM, the checksum Redis Cluster hashes keys with. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
/** HASH_SLOT: only the text between the first "{" and the next "}" is hashed, if not empty. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  return crc16(Buffer.from(hashed)) % 16384;
}

describe('Redis Cluster', () => {
  it('keeps every key an account or entity call touches in one hash slot', async () => {
    // the reference values of CRC16/XMODEM and of the Redis Cluster specification
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('somekey')).toBe(11058);
    // as CLUSTER KEYSLOT answers on a cluster-enabled redis-server 7.0
    expect(keySlot('ff:{a:acct-1}:h')).toBe(7440);
    expect(keySlot('ff:{i:203.0.113.1}:a')).toBe(15561);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));

    const prefix = uniquePrefix();
    const store = new FeatureStore(redis, layoutFor(prefix));
    const ops: AccountOp[] = [
      ...Object.keys(EVENT_KINDS).map((kind): AccountOp => ({
        op: 'event',
        kind: kind as EventKind,
        eventId: `e-${kind}`,
      })),
      { op: 'value', kind: 'device', value: 'dev-1', noveltyName: 'device' },
      { op: 'sessionStart', sessionId: 's-1', latitude: 1, longitude: 2, eventId: 'e-session' },
      { op: 'contract', contractId: 'ct-1', patch: { role: 'client', counterpart: 'acct-2', startedAt: T0 } },
      { op: 'context', field: 'createdAt', value: String(T0) },
    ];
    for (const account of ['acct-1', 'acct-2']) {
      await store.applyAccount(account, T0, ops, [], false, 'login');
    }
    // every key written under the prefix is one the calls declared (no key outside KEYS)
    const declared = ['acct-1', 'acct-2'].map((account) => store.accountKeys(account));
    expect(await keysUnder(prefix)).toEqual(declared.flat().sort());
    for (const [i, account] of ['acct-1', 'acct-2'].entries()) {
      // one slot: the slot of the account's tag (ids are validated without braces)
      expect(new Set(declared[i]!.map(keySlot))).toEqual(new Set([keySlot(`a:${account}`)]));
    }
    // different accounts spread over slots
    expect(keySlot(store.accountKeys('acct-1')[0]!)).not.toBe(keySlot(store.accountKeys('acct-2')[0]!));

    await store.applyEntity('ip', '203.0.113.1', T0, 'acct-1', { from: -DAY, maxIds: 1 });
    const [accounts, marks] = store.entityKeys('ip', '203.0.113.1');
    expect(keySlot(accounts!)).toBe(keySlot(marks!));
    expect(keySlot(accounts!)).toBe(keySlot('i:203.0.113.1'));
  });
});

describe('explain', () => {
  it('reads the windows as of the account watermark in one call, writing nothing', async () => {
    const prefix = uniquePrefix();
    const policy = realisticPolicy(prefix);
    const store = new FeatureStore(redis, policy.layout);
    const events = await realisticEvents(prefix);
    for (const e of events) await applyEvent(store, policy, e);
    const takeover = events.find((e) => e.event.accountId.startsWith('acct-takeover'))!.event.accountId;
    const newest = Math.max(
      ...events.filter((e) => e.event.accountId === takeover).map((e) => e.event.occurredAt),
    );

    await new Promise((r) => setTimeout(r, 50));
    const before = await contentsUnder(prefix);
    const ttls = new Map<string, number>();
    for (const key of Object.keys(before)) ttls.set(key, await redis.pttl(key));

    // every question any signal asks, the way an analyst's explain asks them
    const queries = queriesFor(policy.signals);
    const commands = store.commandsSent;
    const snap = await store.applyAccount(takeover, -Date.now(), [], queries, true);
    expect(store.commandsSent - commands).toBe(1);
    expect(snap.asOf).toBe(newest);
    expect(snap.watermark).toBe(newest);
    expect(snap.results.size).toBe(queries.length);
    // twelve failed logins 40-55 minutes after t0, the newest event 70 minutes after: all in 1h
    expect(countOf(snap, count('loginFailed', 15 * MINUTE)).n).toBe(0);
    const failedHour = await store.applyAccount(
      takeover,
      -Date.now(),
      [],
      [count('loginFailed', HOUR)],
      true,
    );
    expect(countOf(failedHour, count('loginFailed', HOUR)).n).toBe(12);
    expect(countOf(snap, count('methodAdded', DAY)).n).toBe(2);
    expect(
      distinctOf(snap, { q: 'distinct', kind: 'device', from: -90 * DAY, maxValues: 20 }).values,
    ).toEqual(['dev-x-unknown', 'dev-b-phone']);
    expect(snap.context.identityVerified).toBe(true);

    expect(await contentsUnder(prefix)).toEqual(before);
    for (const [key, ttl] of ttls) {
      const now = await redis.pttl(key);
      expect(now, key).toBeLessThanOrEqual(ttl);
    }

    // an account with no data is read as of the clock, and nothing is created for it
    const unknown = await store.applyAccount('acct-never-seen', -Date.now(), [], queries, true);
    expect(Math.abs(unknown.asOf - Date.now())).toBeLessThan(5_000);
    expect(await keysUnder(`${prefix}:{a:acct-never-seen}`)).toEqual([]);
  });
});
