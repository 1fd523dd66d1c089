// The feature state's durable copy on a real Redis (src/features/state-backend.ts): an account's
// encoded features come back byte for byte and answer every question as before; every key
// expires within its retention; shared entities count distinct accounts in a window through the
// batch overlay, capped and marked; every key carries one hash tag; a namespace is dropped alone.
// Every test writes under its own key prefix.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { planEvent } from '../../processors/registry.js';
import type { ActivityEvent, EnrichedEvent } from '../../src/domain/events.js';
import { contentDigest, queriesFor } from '../../src/engine/engine.js';
import { compilePolicy, type Policy } from '../../src/engine/policy.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { AccountFeatures } from '../../src/features/account-features.js';
import {
  COUNTED_ONLY,
  EVENT_KINDS,
  VALUE_KINDS,
  type AccountOp,
  type AccountQuery,
  type EntityType,
  type EventKind,
  type FeatureLayout,
  type ValueKind,
} from '../../src/features/model.js';
import { readStoredAccount } from '../../src/features/owned-accounts.js';
import { decodeAccount, encodeAccount } from '../../src/features/persisted.js';
import {
  EntityOverlay,
  entityKey,
  type EntityAccounts,
  type EntityRef,
  type EntityUpdate,
} from '../../src/features/shared-entities.js';
import {
  MemoryStateBackend,
  RedisStateBackend,
  type StateBackend,
  type StateWrite,
} from '../../src/features/state-backend.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { accountTakeover, travellingFreelancer } from '../../src/scenarios/reference.js';
import { endpoints } from '../support/endpoints.js';
import { DAY, HOUR, MINUTE, T0, contract, login, observation } from '../support/snapshot.js';

const SECOND = 1_000;
const RUN = `ffit-state-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
let redis: Redis;
let testNo = 0;

/** A key prefix no other test (or test run) writes under. */
const uniquePrefix = () => `${RUN}-${++testNo}`;

function layoutWith(keyPrefix: string, over: Partial<FeatureLayout> = {}): FeatureLayout {
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

/** The policy the default config compiles to, under a test's own prefix. */
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

const noWrites = (): StateWrite => ({ entities: [], accounts: [], reviews: [] });
// decided now: review records expire a retention after their decision day
const DECIDED = Date.now() - HOUR;
const review = (outcomeId: string, outcome: string) => ({
  outcomeId,
  flagId: `ff-${outcomeId}`,
  queue: 'account_security',
  outcome,
  decidedAt: DECIDED,
  signals: ['login.failed_burst'],
});

beforeAll(async () => {
  redis = new Redis(endpoints().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  geoip = await GeoIp.open(loadConfig({ env: {} }).config.maxmind);
});

afterAll(async () => {
  const mine = await scanKeys(`${RUN}-*`);
  if (mine.length) await redis.del(...mine);
  redis.disconnect();
});

// ---------------------------------------------------------------------------------------------
// Realistic state: the reference scenarios through the processors, as the engine applies them
// ---------------------------------------------------------------------------------------------

let geoip: GeoIp;

/**
 * The two reference scenarios and a second account sharing the takeover's IP, with a disputed
 * contract between them, in time order.
 */
function realisticEvents(runId: string): EnrichedEvent[] {
  const a = travellingFreelancer(T0 - 12 * DAY, runId);
  const b = accountTakeover(T0 - 2 * HOUR, runId);
  const mate = `acct-mate-${runId}`;
  const base = { accountId: mate, deviceId: 'dev-m-1' };
  const enrich = (events: ActivityEvent[]) =>
    events.map((e) => ({ ...e, geo: e.event.ip ? geoip.lookup(e.event.ip) : null }) as EnrichedEvent);
  const extras: EnrichedEvent[] = [
    ...[3, 1].map((d) => login({ ...base, at: T0 - d * DAY, sessionId: `sess-m-${d}` })),
    login({ ...base, at: T0 - 40 * MINUTE, sessionId: 'sess-m-0' }),
    login({ ...base, at: T0 - 30 * MINUTE, outcome: 'LOGOUT', sessionId: 'sess-m-0' }),
    ...(['STARTED', 'MILESTONE_PAID', 'DISPUTED'] as const).map((action, i) =>
      contract({
        accountId: mate,
        at: T0 - 3 * DAY + i * DAY,
        contractId: `ctr-m-${runId}`,
        clientAccountId: mate,
        freelancerAccountId: b.accountId,
        action,
      }),
    ),
  ];
  return [...enrich([...a.phases.flat(), ...b.phases.flat()]), ...extras]
    .map((e, i) => ({ e, i }))
    .sort((x, y) => x.e.event.occurredAt - y.e.event.occurredAt || x.i - y.i)
    .map((x) => x.e);
}

interface Fed {
  accounts: Map<string, AccountFeatures>;
  /**
   * The entity sightings of the events (written to Redis like one batch's): of the entity types
   * the policy keeps, each read from the backend first, as the engine does.
   */
  overlay: EntityOverlay;
  /** Per account, the event times and op lists it saw. */
  seen: Map<string, { at: number; ops: AccountOp[]; eventId: string; digest: string }[]>;
}

/** An overlay over what `backend` holds of `refs`: a batch's entity reads, as the engine does them. */
async function readOverlay(
  backend: StateBackend,
  layout: FeatureLayout,
  refs: EntityRef[],
): Promise<EntityOverlay> {
  const read = await backend.readEntities(refs);
  const known = new Map<string, EntityAccounts>(refs.map((r, i) => [entityKey(r), read[i]!]));
  return new EntityOverlay(known, layout);
}

/**
 * Every subject's ops as the engine applies them: admitted by event id, applied, remembered. The
 * entities the events name, of the types the policy keeps, are read from `backend` first and seen.
 */
async function feed(events: EnrichedEvent[], policy: Policy, backend: StateBackend): Promise<Fed> {
  const layout = policy.layout;
  const plans = events.map((e) => ({ e, plan: planEvent(e) }));
  const refs = new Map<string, EntityRef>();
  for (const { plan } of plans)
    for (const en of plan.entities)
      if (policy.entityTypes.has(en.type)) refs.set(entityKey(en), { type: en.type, id: en.id });
  const overlay = await readOverlay(backend, layout, [...refs.values()]);
  const fed: Fed = { accounts: new Map(), overlay, seen: new Map() };
  for (const { e, plan } of plans) {
    const { eventId, occurredAt: at } = e.event;
    const digest = contentDigest(e.family, e.event);
    for (const s of plan.subjects) {
      let f = fed.accounts.get(s.accountId);
      if (!f) fed.accounts.set(s.accountId, (f = new AccountFeatures(s.accountId, layout)));
      if (f.recall(eventId, digest) !== 'new') continue;
      if (!f.apply(at, s.ops, e.family).late) f.remember(eventId, at, e.family, digest);
      const list = fed.seen.get(s.accountId) ?? [];
      fed.seen.set(s.accountId, [...list, { at, ops: s.ops, eventId, digest }]);
    }
    for (const en of plan.entities)
      if (en.addAccount && policy.entityTypes.has(en.type)) fed.overlay.see(en, en.addAccount, at);
  }
  return fed;
}

/** Fills what signals and reviews leave in an account, so every part of the encoding is used. */
function withSignalMemory(f: AccountFeatures): void {
  const at = f.watermark;
  f.rememberObservations(
    at,
    [
      observation('login.failed_burst', { observedAt: at, evidenceEventIds: ['e-1', 'e-2'] }),
      observation('payment.method_velocity', { observedAt: at - HOUR, observed: 2.5, threshold: 2 }),
    ],
    DAY,
  );
  const flag = (flagId: string) => ({
    flagId,
    revision: 2,
    severity: 'high',
    score: 5.18,
    createdAt: at - HOUR,
    updatedAt: at,
    signals: [observation('login.impossible_travel', { observedAt: at, observed: 8069, threshold: 1000 })],
  });
  f.openFlags.set('account_security', flag('ff-closed'));
  f.closeFlag('account_security', 'ff-closed');
  f.openFlags.set('account_security', flag('ff-open'));
  f.clearPattern('payments|payment', at + 30 * DAY);
}

/** Every question a signal asks, plus one per kind and window the layout can answer. */
function questions(policy: Policy): AccountQuery[] {
  const l = policy.layout;
  const qs: AccountQuery[] = [...queriesFor(policy.signals), { q: 'contracts' }];
  for (const kind of Object.keys(EVENT_KINDS) as EventKind[]) {
    const maxIds = COUNTED_ONLY.has(kind) ? 0 : 50;
    for (const w of [HOUR, DAY, l.eventRetentionMs[kind] - l.allowedLatenessMs])
      qs.push({ q: 'count', kind, from: -w, to: 0, maxIds }, { q: 'count', kind, from: -1, to: w, maxIds });
  }
  for (const kind of Object.keys(VALUE_KINDS) as ValueKind[])
    for (const w of [HOUR, 30 * DAY, l.valueRetentionMs])
      qs.push({ q: 'distinct', kind, from: -w, maxValues: 50 });
  qs.push(
    { q: 'sessions', from: -2 * HOUR },
    { q: 'sessions', from: -(l.sessionRetentionMs - l.allowedLatenessMs) },
  );
  return qs;
}

/** Distinct values seen by `n` logins, past the value cap. */
function cappedAccount(layout: FeatureLayout, n: number): AccountFeatures {
  const f = new AccountFeatures('acct-many-devices', layout);
  for (let i = 0; i < n; i++)
    f.apply(
      T0 + i * SECOND,
      [{ op: 'value', kind: 'device', value: `dev-${i}`, noveltyName: 'device' }],
      'login',
    );
  return f;
}

describe('an account written and read back', () => {
  it('decodes to an account that answers every question as the original and re-encodes to the same bytes', async () => {
    const prefix = uniquePrefix();
    const policy = realisticPolicy(prefix);
    const backend = new RedisStateBackend(redis, prefix);
    const fed = await feed(realisticEvents(prefix), policy, backend);
    for (const f of fed.accounts.values()) if (f.accountId.startsWith('acct-takeover')) withSignalMemory(f);
    const many = cappedAccount(policy.layout, policy.layout.caps.values + 4);
    expect(many.capsReached.has('v')).toBe(true);
    const originals = [...fed.accounts.values(), many];
    expect(originals).toHaveLength(5);

    const writes = originals.map((f) => ({ accountId: f.accountId, bytes: encodeAccount(f) }));
    await backend.write({ ...noWrites(), accounts: writes }, policy.accountTtlMs);
    const read = await backend.readAccounts([...writes.map((w) => w.accountId), 'acct-never-seen']);
    expect(read.at(-1)).toBeNull();

    // with something in them
    const takeover = originals.find((f) => f.accountId.startsWith('acct-takeover'))!;
    expect(
      takeover.answer({ q: 'count', kind: 'loginFailed', from: -HOUR, to: 0, maxIds: 0 }, takeover.watermark),
    ).toEqual({ n: 12, ids: [] });
    expect(takeover.openFlags.size).toBe(1);

    const qs = questions(policy);
    let answered = 0;
    for (const [i, original] of originals.entries()) {
      const id = original.accountId;
      expect(read[i], id).toEqual(writes[i]!.bytes);
      const decoded = decodeAccount(id, read[i]!, policy.layout);
      expect(encodeAccount(decoded).equals(writes[i]!.bytes), id).toBe(true);
      expect(decoded).toEqual(original);

      // as of the watermark and of every event the account saw
      const seen = fed.seen.get(id) ?? [];
      const times = new Set([original.watermark, original.watermark + DAY, ...seen.map((s) => s.at)]);
      for (const t of times)
        for (const q of qs) {
          expect(decoded.answer(q, t), `${id} ${JSON.stringify(q)} at ${t}`).toEqual(original.answer(q, t));
          answered++;
        }
      for (const s of seen) {
        expect(decoded.lastSeen(s.ops)).toEqual(original.lastSeen(s.ops));
        expect(decoded.recall(s.eventId, s.digest)).toBe(original.recall(s.eventId, s.digest));
      }
      expect(decoded.context).toEqual(original.context);
      expect(decoded.lastLogin).toEqual(original.lastLogin);
      expect(decoded.previousLogin).toEqual(original.previousLogin);

      // and it goes on as the original: the same next events give the same bytes
      const next: [number, AccountOp[], string][] = [
        [original.watermark + MINUTE, [{ op: 'event', kind: 'loginFailed', eventId: 'next-1' }], 'login'],
        [
          original.watermark - 30 * MINUTE,
          [{ op: 'value', kind: 'device', value: 'dev-next', noveltyName: 'device' }],
          'ip',
        ],
        [
          original.watermark - 2 * HOUR,
          [{ op: 'event', kind: 'methodAdded', eventId: 'next-late' }],
          'login',
        ],
      ];
      for (const [at, ops, family] of next)
        expect(decoded.apply(at, ops, family), id).toEqual(original.apply(at, ops, family));
      expect(encodeAccount(decoded).equals(encodeAccount(original)), id).toBe(true);
    }
    // enough questions were answered to mean something
    expect(answered).toBeGreaterThan(10_000);
  });

  it('reading (as explain does) changes nothing and creates nothing', async () => {
    const prefix = uniquePrefix();
    const policy = realisticPolicy(prefix);
    const backend = new RedisStateBackend(redis, prefix);
    const fed = await feed(realisticEvents(prefix), policy, backend);
    await backend.write(
      {
        ...noWrites(),
        accounts: [...fed.accounts.values()].map((f) => ({
          accountId: f.accountId,
          bytes: encodeAccount(f),
        })),
      },
      policy.accountTtlMs,
    );
    const keys = await backend.keys();
    const before = new Map<string, { bytes: Buffer | null; ttl: number }>();
    for (const k of keys) before.set(k, { bytes: await redis.getBuffer(k), ttl: await redis.pttl(k) });
    await new Promise((r) => setTimeout(r, 20));

    for (const f of fed.accounts.values()) {
      const stored = await readStoredAccount(backend, f.accountId, policy.layout);
      expect(encodeAccount(stored).equals(encodeAccount(f))).toBe(true);
    }
    const unknown = await readStoredAccount(backend, 'acct-never-seen', policy.layout);
    expect(unknown.watermark).toBe(0);
    expect(unknown.isEmpty).toBe(true);

    expect((await backend.keys()).sort()).toEqual([...keys].sort());
    for (const [k, b] of before) {
      expect(await redis.getBuffer(k), k).toEqual(b.bytes);
      // a read does not refresh the TTL
      expect(await redis.pttl(k), k).toBeLessThanOrEqual(b.ttl);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Bounded memory: TTLs and expiry
// ---------------------------------------------------------------------------------------------

const TYPE_OF_TAG = { i: 'ip', d: 'device', p: 'instrument' } as const satisfies Record<string, EntityType>;

/** The hash tag of a key: the text between its first "{" and the next "}" (none: undefined). */
function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

describe('bounded memory', () => {
  it('gives every key a TTL no longer than its retention', async () => {
    const prefix = uniquePrefix();
    const policy = realisticPolicy(prefix);
    const l = policy.layout;
    const backend = new RedisStateBackend(redis, prefix);
    const fed = await feed(realisticEvents(prefix), policy, backend);
    // the engine keeps only the entity types some signal reads (the default config reads no
    // device set): a device set, written straight to the backend, has its TTL checked too
    for (const u of fed.overlay.updates()) expect(policy.entityTypes.has(u.ref.type)).toBe(true);
    const device: EntityRef = { type: 'device', id: 'dev-ttl' };
    // more accounts on one IP than the cap: the capped marker is written too
    const crowded: EntityRef = { type: 'ip', id: '203.0.113.250' };
    await entityBatch([backend], l, [crowded, device], (o) => {
      for (let i = 0; i <= l.caps.accountsPerEntity; i++) o.see(crowded, `acct-crowd-${i}`, T0 + i);
      o.see(device, 'acct-crowd-0', T0);
    });
    await backend.write(
      {
        entities: fed.overlay.updates(),
        accounts: [...fed.accounts.values()].map((f) => ({
          accountId: f.accountId,
          bytes: encodeAccount(f),
        })),
        reviews: [],
      },
      policy.accountTtlMs,
    );
    const keys = await backend.keys();
    expect(keys.length).toBeGreaterThan(10);
    const kinds = new Set<string>();
    for (const key of keys) {
      const tag = hashTag(key)!;
      const suffix = key.slice(key.indexOf('}') + 1);
      kinds.add(`${tag[0]}${suffix}`);
      const max =
        tag[0] === 'a' ? policy.accountTtlMs : l.entityRetentionMs[TYPE_OF_TAG[tag[0] as 'i' | 'd' | 'p']];
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(max);
    }
    // accounts and every type of entity were written, so each was checked; an entity is one key,
    // its cap marker a member of it (under the same TTL)
    expect([...kinds].sort()).toEqual(['a', 'd:a', 'i:a', 'p:a']);
    const crowdedKey = backend.entityKey(crowded);
    expect(keys).toContain(crowdedKey);
    expect(await redis.zscore(crowdedKey, '!capped')).toBe('inf');
    expect(await redis.zcard(crowdedKey)).toBe(l.caps.accountsPerEntity + 1);
  });

  it('lets the keys of a short layout expire', async () => {
    const prefix = uniquePrefix();
    const ms = 150;
    const events = Object.fromEntries(Object.keys(EVENT_KINDS).map((k) => [k, ms])) as Record<
      EventKind,
      number
    >;
    const layout = layoutWith(prefix, {
      allowedLatenessMs: 50,
      eventRetentionMs: events,
      valueRetentionMs: ms,
      sessionRetentionMs: ms,
      entityRetentionMs: { ip: ms, device: ms, instrument: ms },
      caps: { eventsPerKind: 500, values: 256, sessions: 32, accountsPerEntity: 1 },
    });
    const backend = new RedisStateBackend(redis, prefix);
    const f = new AccountFeatures('acct-1', layout);
    f.apply(
      T0,
      [
        ...Object.keys(EVENT_KINDS).map((kind): AccountOp => ({
          op: 'event',
          kind: kind as EventKind,
          eventId: `e-${kind}`,
        })),
        { op: 'value', kind: 'device', value: 'dev-1', noveltyName: 'device' },
        { op: 'sessionStart', sessionId: 's-1', latitude: 1, longitude: 2, eventId: 'e-session' },
        {
          op: 'contract',
          contractId: 'ct-1',
          patch: { role: 'client', counterpart: 'acct-2', startedAt: T0 },
        },
        { op: 'context', field: 'createdAt', value: String(T0) },
      ],
      'login',
    );
    const ip: EntityRef = { type: 'ip', id: '203.0.113.9' };
    const overlay = await readOverlay(backend, layout, [ip]);
    overlay.see(ip, 'acct-1', T0);
    overlay.see(ip, 'acct-2', T0 + 1); // past the cap of 1: the marker too
    await backend.write(
      {
        entities: overlay.updates(),
        accounts: [{ accountId: 'acct-1', bytes: encodeAccount(f) }],
        reviews: [],
      },
      ms,
    );
    const keys = [backend.accountKey('acct-1'), backend.entityKey(ip)];
    expect(await redis.exists(...keys)).toBe(keys.length);
    expect(await redis.zrange(backend.entityKey(ip), 0, -1)).toEqual(['acct-2', '!capped']);
    expect((await backend.keys()).sort()).toEqual([...keys].sort());
    await new Promise((r) => setTimeout(r, 3 * ms));
    // EXISTS expires lazily, so it never counts a key past its TTL
    expect(await redis.exists(...keys)).toBe(0);
    expect(await backend.keys()).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Shared entities through the batch overlay
// ---------------------------------------------------------------------------------------------

/**
 * One batch's entity work as the engine does it: read the entities it sees or asks about, let
 * `body` see and ask, write the overlay's updates. Run on each backend alike.
 */
async function entityBatch(
  backends: StateBackend[],
  layout: FeatureLayout,
  refs: EntityRef[],
  body: (o: EntityOverlay) => void,
): Promise<EntityOverlay[]> {
  const out: EntityOverlay[] = [];
  for (const backend of backends) {
    const overlay = await readOverlay(backend, layout, refs);
    body(overlay);
    await backend.write({ ...noWrites(), entities: overlay.updates() }, HOUR);
    out.push(overlay);
  }
  return out;
}

describe('shared entities', () => {
  it('count distinct accounts per IP, device and instrument in the window, batch after batch', async () => {
    const prefix = uniquePrefix();
    const layout = layoutWith(prefix);
    const redisBackend = new RedisStateBackend(redis, prefix);
    const memory = new MemoryStateBackend();
    const both = [redisBackend, memory];
    const W = 7 * DAY;
    const ip: EntityRef = { type: 'ip', id: '203.0.113.5' };
    const answers = (os: EntityOverlay[], ref: EntityRef, from: number, maxIds = 10) =>
      os.map((o) => o.accountsOn(ref, T0 + from, maxIds));

    // an account last seen exactly one window ago is out; seeing an account twice counts it once
    await entityBatch(both, layout, [ip], (o) => {
      o.see(ip, 'acct-old', T0 - W);
      o.see(ip, 'acct-a', T0 - 3 * DAY);
      o.see(ip, 'acct-b', T0 - 2 * DAY);
      o.see(ip, 'acct-c', T0 - HOUR);
    });
    let seen = await entityBatch(both, layout, [ip], (o) => o.see(ip, 'acct-a', T0));
    for (const a of answers(seen, ip, -W))
      expect(a).toEqual({
        type: 'ip',
        id: '203.0.113.5',
        accounts: { n: 3, values: ['acct-a', 'acct-c', 'acct-b'] },
        capped: false,
      });
    // an out-of-order sighting does not move an account's last-seen time back, here or in Redis
    seen = await entityBatch(both, layout, [ip], (o) => o.see(ip, 'acct-c', T0 - 6 * DAY));
    for (const a of answers(seen, ip, -HOUR - 1)) expect(a.accounts.values).toEqual(['acct-a', 'acct-c']);
    seen = await entityBatch(both, layout, [ip], () => undefined);
    for (const a of answers(seen, ip, -HOUR - 1)) expect(a.accounts.values).toEqual(['acct-a', 'acct-c']);

    // within a batch, an event sees the sightings of the events before it
    const dev: EntityRef = { type: 'device', id: 'dev-shared' };
    const other: EntityRef = { type: 'instrument', id: 'dev-shared' };
    await entityBatch(both, layout, [dev], (o) => o.see(dev, 'acct-a', T0 - DAY));
    seen = await entityBatch(both, layout, [dev, other], (o) => {
      expect(o.accountsOn(dev, T0 - 30 * DAY, 10).accounts.values).toEqual(['acct-a']);
      o.see(dev, 'acct-b', T0);
    });
    for (const a of answers(seen, dev, -30 * DAY))
      expect(a.accounts).toEqual({ n: 2, values: ['acct-b', 'acct-a'] });
    // entities of different types never mix, even with the same id
    for (const a of answers(seen, other, -W)) expect(a.accounts.n).toBe(0);

    const card: EntityRef = { type: 'instrument', id: 'fp-1' };
    await entityBatch(both, layout, [card], (o) => {
      for (const [i, acct] of ['acct-a', 'acct-b', 'acct-c'].entries()) o.see(card, acct, T0 + i);
    });
    seen = await entityBatch(both, layout, [card], () => undefined);
    for (const a of answers(seen, card, -90 * DAY, 2))
      expect(a.accounts).toEqual({ n: 3, values: ['acct-c', 'acct-b'] });

    // members out of every window are trimmed from the stored set, measured from its newest
    await entityBatch(both, layout, [ip], (o) => o.see(ip, 'acct-z', T0 + 8 * DAY));
    expect(await redis.zrange(redisBackend.entityKey(ip), 0, -1)).toEqual(['acct-z']);

    // Redis and the in-memory backend keep the same sets
    const refs = [ip, dev, other, card];
    expect(await redisBackend.readEntities(refs)).toEqual(await memory.readEntities(refs));
  });

  it('keep the newest accounts past the cap, and say so', async () => {
    const prefix = uniquePrefix();
    const layout = layoutWith(prefix, {
      caps: { eventsPerKind: 500, values: 256, sessions: 32, accountsPerEntity: 3 },
    });
    const redisBackend = new RedisStateBackend(redis, prefix);
    const memory = new MemoryStateBackend();
    const both = [redisBackend, memory];
    const ip: EntityRef = { type: 'ip', id: '203.0.113.7' };
    const quiet: EntityRef = { type: 'ip', id: '203.0.113.8' };

    await entityBatch(both, layout, [ip, quiet], (o) => {
      for (let i = 1; i <= 5; i++) o.see(ip, `acct-${i}`, T0 + i * SECOND);
      o.see(quiet, 'acct-1', T0);
    });
    for (const backend of both) {
      const [crowded, alone] = await backend.readEntities([ip, quiet]);
      expect(crowded).toEqual({
        accounts: new Map([
          ['acct-3', T0 + 3 * SECOND],
          ['acct-4', T0 + 4 * SECOND],
          ['acct-5', T0 + 5 * SECOND],
        ]),
        capped: true,
      });
      expect(alone!.capped).toBe(false);
    }
    // in Redis: the newest accounts and the marker, scored above them all; none on the quiet set
    expect(await redis.zrange(redisBackend.entityKey(ip), 0, -1, 'WITHSCORES')).toEqual([
      ...[3, 4, 5].flatMap((i) => [`acct-${i}`, String(T0 + i * SECOND)]),
      '!capped',
      'inf',
    ]);
    expect(await redis.zrange(redisBackend.entityKey(quiet), 0, -1)).toEqual(['acct-1']);

    // the overlay caps what an event sees too, newest first
    const seen = await entityBatch(both, layout, [ip], (o) => o.see(ip, 'acct-6', T0 + 6 * SECOND));
    for (const o of seen)
      expect(o.accountsOn(ip, T0 - DAY, 10)).toMatchObject({
        accounts: { n: 3, values: ['acct-6', 'acct-5', 'acct-4'] },
        capped: true,
      });
    // and the stored set: still the newest three, the marker once
    expect(await redis.zrange(redisBackend.entityKey(ip), 0, -1)).toEqual([
      'acct-4',
      'acct-5',
      'acct-6',
      '!capped',
    ]);
    expect(await redisBackend.readEntities([ip, quiet])).toEqual(await memory.readEntities([ip, quiet]));
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
/** HASH_SLOT: only the hash tag is hashed, if the key has one. */
const keySlot = (key: string) => crc16(Buffer.from(hashTag(key) ?? key)) % 16384;

describe('Redis Cluster', () => {
  it('gives every key an account or entity write touches one hash tag: its entity', async () => {
    // the reference values of CRC16/XMODEM and of the Redis Cluster specification
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('somekey')).toBe(11058);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    // as CLUSTER KEYSLOT answers on a cluster-enabled redis-server 7.0
    expect(keySlot('ff:{i:203.0.113.1}:a')).toBe(15561);

    const prefix = uniquePrefix();
    const policy = realisticPolicy(prefix);
    const backend = new RedisStateBackend(redis, prefix);
    // the commands the backend pipelines (its entity reads and all its writes), to see their keys
    const pipelines = vi.spyOn(redis, 'pipeline');
    let sent: unknown[][];
    let updates: EntityUpdate[];
    let fed: Fed;
    try {
      fed = await feed(realisticEvents(prefix), policy, backend);
      updates = fed.overlay.updates();
      await backend.write(
        {
          entities: updates,
          accounts: [...fed.accounts.values()].map((f) => ({
            accountId: f.accountId,
            bytes: encodeAccount(f),
          })),
          reviews: [review('o-1', 'CLEARED'), review('o-2', 'CONFIRMED')],
        },
        policy.accountTtlMs,
      );
      await backend.write(
        // the same decision again (a retried batch) and one more
        { ...noWrites(), reviews: [review('o-1', 'CLEARED'), review('o-3', 'CLEARED')] },
        HOUR,
      );
      sent = pipelines.mock.calls.flatMap(([commands]) => (commands ?? []) as unknown[][]);
    } finally {
      pipelines.mockRestore();
    }
    expect(
      (await backend.reviews(DECIDED - DAY, DECIDED + DAY)).map((r) => [r.outcomeId, r.outcome]),
    ).toEqual([
      ['o-1', 'CLEARED'],
      ['o-2', 'CONFIRMED'],
      ['o-3', 'CLEARED'],
    ]);
    expect(updates.length).toBeGreaterThan(0);

    // every key under the prefix is one the backend names, and every one it names was written:
    // nothing stray; an entity is one key
    const entityKeys = updates.map((u) => backend.entityKey(u.ref));
    expect(new Set(entityKeys).size).toBe(updates.length);
    const named = new Set([
      ...[...fed.accounts.keys()].map((id) => backend.accountKey(id)),
      ...entityKeys,
      backend.reviewKey(new Date(DECIDED).toISOString().slice(0, 10)),
    ]);
    const keys = await backend.keys();
    expect([...keys].sort()).toEqual([...named].sort());
    for (const key of keys) {
      // exactly one tag, right after the prefix
      expect(key.startsWith(`${prefix}:{`), key).toBe(true);
      expect(key.split('{').length, key).toBe(2);
    }
    // every command sent names one of those keys (the reads and writes of an entity its own)
    expect(sent.length).toBeGreaterThan(named.size);
    const commandKeys = new Set(sent.map((c) => String(c[1])));
    for (const key of commandKeys) expect(named.has(key), key).toBe(true);
    for (const key of entityKeys) expect(commandKeys.has(key), key).toBe(true);
    for (const id of fed.accounts.keys()) expect(keySlot(backend.accountKey(id))).toBe(keySlot(`a:${id}`));
    for (const u of updates) {
      const key = backend.entityKey(u.ref);
      expect(key).toBe(`${prefix}:{${entityKey(u.ref)}}:a`);
      expect(hashTag(key)).toBe(entityKey(u.ref));
      expect(keySlot(key)).toBe(keySlot(entityKey(u.ref)));
    }
    // different accounts spread over slots
    expect(keySlot(backend.accountKey('acct-1'))).not.toBe(keySlot(backend.accountKey('acct-2')));
  });
});

describe('namespaces', () => {
  it('dropNamespace removes every key of its namespace and nothing else', async () => {
    const prefix = uniquePrefix();
    // a replay's namespace is the live prefix plus a suffix: neither contains the other's keys
    const names = [prefix, `${prefix}-replay-x`, `${prefix}x`];
    const backends = names.map((n) => new RedisStateBackend(redis, n));
    const layout = layoutWith(prefix);
    const f = new AccountFeatures('acct-1', layout);
    f.apply(T0, [{ op: 'event', kind: 'loginFailed', eventId: 'f-1' }], 'login');
    for (const b of backends) {
      const dev: EntityRef = { type: 'device', id: 'dev-1' };
      const overlay = await readOverlay(b, layout, [dev]);
      overlay.see(dev, 'acct-1', T0);
      await b.write(
        {
          entities: overlay.updates(),
          accounts: [{ accountId: 'acct-1', bytes: encodeAccount(f) }],
          reviews: [review('o-x', 'CLEARED')],
        },
        HOUR,
      );
    }
    const before = await Promise.all(backends.map((b) => b.keys()));
    for (const k of before) expect(k).toHaveLength(3);
    expect(await backends[0]!.dropNamespace()).toBe(3);
    expect(await backends[0]!.keys()).toEqual([]);
    expect(await redis.exists(...before[0]!)).toBe(0);
    for (const [i, b] of backends.entries())
      if (i > 0) expect((await b.keys()).sort()).toEqual(before[i]!.sort());
  });
});
