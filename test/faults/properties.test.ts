// Property-based tests on the real services: the decoder against the real registry (arbitrary
// bytes and schema ids give a record or a DecodeError, nothing else), and the feature state
// (AccountFeatures fed arbitrary events of every family through the processors): the same events
// again change nothing, reordering that keeps each family's order and moves no event by more
// than the allowed lateness gives byte-identical state, and the encoded state comes back from
// Redis byte for byte.
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planEvent } from '../../processors/registry.js';
import type { EnrichedEvent, Geo } from '../../src/domain/events.js';
import { contentDigest } from '../../src/engine/engine.js';
import { compilePolicy } from '../../src/engine/policy.js';
import { AccountFeatures } from '../../src/features/account-features.js';
import type { FeatureLayout } from '../../src/features/model.js';
import { canonicalAccount, decodeAccount, encodeAccount } from '../../src/features/persisted.js';
import { EntityOverlay, entityKey, type EntityRef } from '../../src/features/shared-entities.js';
import { MemoryStateBackend, RedisStateBackend } from '../../src/features/state-backend.js';
import { Codec, DecodeError, type SchemaRole } from '../../src/kafka/codec.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import {
  DAY,
  GEO,
  HOUR,
  MINUTE,
  T0,
  account,
  contract,
  ipObservation,
  login,
  payment,
} from '../support/snapshot.js';
import { faultEnv } from './support/stack.js';

const SEED = Number(process.env['FAIRFLAG_PROPERTY_SEED'] ?? Date.now() % 1_000_000);
const INPUT_ROLES: SchemaRole[] = ['login', 'ip', 'payment', 'contract', 'account', 'reviewOutcome'];

describe('decoder properties (real schema registry)', () => {
  const loaded = loadConfig({ env: faultEnv('prop-codec') });
  let codec: Codec;
  let known: number[] = [];
  let samples: Buffer[] = [];
  beforeAll(async () => {
    codec = await Codec.connect(loaded.config);
    known = (
      ['login', 'ip', 'payment', 'contract', 'account', 'reviewOutcome', 'flag', 'deadLetter'] as const
    ).map((r) => codec.idOf(r));
    const at = Date.now() - 60_000;
    samples = [
      await codec.encode('login', {
        eventId: 'e1',
        accountId: 'a1',
        occurredAt: at,
        outcome: 'SUCCESS',
        ip: '1.2.3.4',
        deviceId: 'd',
        sessionId: null,
      }),
      await codec.encode('contract', {
        eventId: 'e2',
        accountId: 'a1',
        occurredAt: at,
        contractId: 'c',
        clientAccountId: 'a1',
        freelancerAccountId: 'a2',
        action: 'ENDED',
        amount: 1.5,
        currency: 'USD',
        rating: 5,
        disputeReason: 'QUALITY',
        ip: null,
        deviceId: null,
      }),
      await codec.encode('reviewOutcome', {
        outcomeId: 'o',
        flagId: 'f',
        accountId: 'a1',
        outcome: 'CLEARED',
        noteCategory: 'x',
        decidedAt: at,
      }),
    ];
  });

  const frame = (id: number, body: Uint8Array) => {
    const h = Buffer.alloc(5);
    h.writeInt32BE(id, 1);
    return Buffer.concat([h, Buffer.from(body)]);
  };

  it('Codec.decodeAs on arbitrary bytes and schema ids returns a record or throws DecodeError, nothing else', async () => {
    const reasons = new Map<string, number>();
    let decoded = 0;
    const input = fc.oneof(
      // anything at all
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      // the wire format's header with a known or arbitrary id, then arbitrary bytes
      fc
        .tuple(
          fc.oneof(fc.constantFrom(...known), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
          fc.uint8Array({ maxLength: 160 }),
        )
        .map(([id, body]) => frame(id, body)),
      // a valid message with a few bytes changed, cut or extended
      fc
        .tuple(
          fc.nat(samples.length - 1),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
          fc.option(fc.nat(), { nil: undefined }),
          fc.uint8Array({ maxLength: 8 }),
        )
        .map(([i, flips, cut, extra]) => {
          const b = Buffer.from(samples[i]!);
          for (const [pos, byte] of flips) b[5 + (pos % (b.length - 5))] = byte;
          const body = cut === undefined ? b : b.subarray(0, 5 + (cut % (b.length - 4)));
          return Buffer.concat([body, Buffer.from(extra)]);
        }),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...INPUT_ROLES), input, async (role, bytes) => {
        try {
          await codec.decodeAs(role, bytes);
          decoded++;
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          reasons.set(err.reason, (reasons.get(err.reason) ?? 0) + 1);
        }
      }),
      { numRuns: 1000, seed: SEED },
    );
    console.log(
      `[property] decodeAs (seed ${SEED}): ${decoded} decoded, DecodeError ${JSON.stringify(Object.fromEntries(reasons))}`,
    );
    // the generators reach every kind of refusal
    for (const r of ['not_wire_format', 'unknown_schema_id', 'wrong_schema', 'undecodable'])
      expect(reasons.get(r), r).toBeGreaterThan(0);
  });
});

describe('feature-state properties (AccountFeatures, real Redis)', () => {
  const loaded = loadConfig({ env: faultEnv('prop-state') });
  const redis = new Redis(loaded.config.redis.url, { lazyConnect: true });
  const layout = compilePolicy(loaded).layout;
  const L = layout.allowedLatenessMs;
  let run = 0;
  beforeAll(async () => {
    await redis.connect();
  });
  afterAll(() => {
    redis.disconnect();
  });

  const ACCOUNTS = ['acct-1', 'acct-2', 'acct-3'];
  const PLACES: (Geo | null)[] = [
    GEO.milton,
    GEO.milton,
    GEO.changchun,
    GEO.linkoping,
    GEO.vpn,
    GEO.hosting,
    GEO.carrier,
    null,
  ];
  // From one event to the next: mostly forward, sometimes back within the lateness or beyond it
  // (late if its family has seen newer), sometimes hours or days on, sometimes months either way,
  // sometimes to about the value retention's edge (values last seen then are being forgotten).
  const R = layout.valueRetentionMs;
  const step = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 20 * MINUTE }) },
    { weight: 2, arbitrary: fc.integer({ min: -L, max: 0 }) },
    { weight: 1, arbitrary: fc.integer({ min: -4 * L, max: -L - 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: HOUR, max: 3 * DAY }) },
    { weight: 1, arbitrary: fc.integer({ min: -120 * DAY, max: 120 * DAY }) },
    { weight: 1, arbitrary: fc.integer({ min: R - 2 * L, max: R + 2 * L }) },
  );
  const who = fc.nat(ACCOUNTS.length - 1);
  const place = fc.nat(PLACES.length - 1);
  const dev = fc.constantFrom('dev-1', 'dev-2', null);
  const shape = fc.oneof(
    fc.record({
      family: fc.constant('login' as const),
      who,
      place,
      dev,
      outcome: fc.constantFrom<'SUCCESS' | 'FAILURE' | 'LOGOUT'>('SUCCESS', 'SUCCESS', 'FAILURE', 'LOGOUT'),
      session: fc.constantFrom('s-1', 's-2', 's-3', null),
    }),
    fc.record({ family: fc.constant('ip' as const), who, place, dev, session: fc.constantFrom('s-1', null) }),
    fc.record({
      family: fc.constant('payment' as const),
      who,
      place,
      dev,
      action: fc.constantFrom<'ADDED' | 'VERIFICATION_FAILED' | 'VERIFICATION_SUCCEEDED' | 'REMOVED'>(
        'ADDED',
        'VERIFICATION_FAILED',
        'VERIFICATION_SUCCEEDED',
        'REMOVED',
      ),
      fp: fc.constantFrom('fp-1', 'fp-2', 'fp-3'),
    }),
    fc.record({
      family: fc.constant('contract' as const),
      who,
      other: fc.integer({ min: 1, max: ACCOUNTS.length - 1 }),
      place,
      dev,
      clientActs: fc.boolean(),
      n: fc.nat(1),
      action: fc.constantFrom<'STARTED' | 'MILESTONE_PAID' | 'ENDED' | 'DISPUTED' | 'REFUNDED'>(
        'STARTED',
        'MILESTONE_PAID',
        'ENDED',
        'DISPUTED',
        'REFUNDED',
      ),
      rating: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }),
      reason: fc.constantFrom<'NON_DELIVERY' | 'QUALITY' | null>('NON_DELIVERY', 'QUALITY', null),
    }),
    fc.record({
      family: fc.constant('account' as const),
      who,
      place,
      dev,
      action: fc.constantFrom<
        'CREATED' | 'IDENTITY_VERIFIED' | 'IDENTITY_VERIFICATION_FAILED' | 'STATS_UPDATED'
      >('CREATED', 'IDENTITY_VERIFIED', 'IDENTITY_VERIFICATION_FAILED', 'STATS_UPDATED'),
      type: fc.constantFrom<'FREELANCER' | 'CLIENT' | null>('FREELANCER', 'CLIENT', null),
      n: fc.option(fc.nat(500), { nil: null }),
    }),
  );
  /** Events of every family for a few accounts, in generation order, each id used once. */
  const events: fc.Arbitrary<EnrichedEvent[]> = fc
    .array(fc.tuple(step, shape), { minLength: 1, maxLength: 40 })
    .map((steps) => {
      let t = T0;
      return steps.map(([dt, s], i): EnrichedEvent => {
        t = Math.max(0, t + dt);
        const common = {
          eventId: `${s.family}-${i}`,
          accountId: ACCOUNTS[s.who]!,
          at: t,
          geo: PLACES[s.place]!,
        };
        switch (s.family) {
          case 'login':
            return login({ ...common, outcome: s.outcome, deviceId: s.dev, sessionId: s.session });
          case 'ip':
            return ipObservation({ ...common, deviceId: s.dev, sessionId: s.session });
          case 'payment':
            return payment({ ...common, deviceId: s.dev, action: s.action, instrumentFingerprint: s.fp });
          case 'contract': {
            // a contract's parties are part of its identity, as on the platform
            const client = ACCOUNTS[(s.who + s.other) % ACCOUNTS.length]!;
            return contract({
              ...common,
              accountId: s.clientActs ? client : common.accountId,
              deviceId: s.dev,
              contractId: `ctr-${common.accountId}-${client}-${s.n}`,
              freelancerAccountId: common.accountId,
              clientAccountId: client,
              action: s.action,
              rating: s.action === 'ENDED' ? s.rating : null,
              disputeReason: s.action === 'DISPUTED' ? s.reason : null,
            });
          }
          case 'account':
            return account({
              ...common,
              deviceId: s.dev,
              action: s.action,
              accountType: s.type,
              lifetimeCompletedContracts: s.n,
            });
        }
      });
    });

  /**
   * The families' own sequences merged in another order, no event passing one of another family
   * more than the lateness away in time (each family of an account is consumed in order; the
   * families lag each other). The earliest event left may always go next, so any choice works.
   */
  const reordered = (list: EnrichedEvent[]) =>
    fc.array(fc.nat(), { minLength: list.length, maxLength: list.length }).map((choices) => {
      const left = list.map((e, i) => ({ e, i }));
      const out: EnrichedEvent[] = [];
      for (const c of choices) {
        const heads = left.filter((x, k) => left.findIndex((y) => y.e.family === x.e.family) === k);
        const free = heads.filter((h) =>
          left.every((z) => z.i >= h.i || Math.abs(z.e.event.occurredAt - h.e.event.occurredAt) <= L),
        );
        const pick = free[c % free.length]!;
        out.push(pick.e);
        left.splice(left.indexOf(pick), 1);
      }
      return out;
    });

  const stats = { applied: 0, late: 0, replays: 0 };
  /**
   * Every subject's ops as the engine applies them (the other side of a contract inline): with
   * dedupe, recognised by event id first and remembered once applied; without, applied as they
   * are (the merges alone must be idempotent).
   */
  const feed = (
    accounts: Map<string, AccountFeatures>,
    list: EnrichedEvent[],
    l: FeatureLayout,
    dedupe: boolean,
  ) => {
    for (const e of list) {
      const { eventId, occurredAt: at } = e.event;
      const digest = contentDigest(e.family, e.event);
      for (const s of planEvent(e).subjects) {
        let f = accounts.get(s.accountId);
        if (!f) accounts.set(s.accountId, (f = new AccountFeatures(s.accountId, l)));
        if (dedupe && f.recall(eventId, digest) !== 'new') {
          stats.replays++;
          continue;
        }
        const applied = f.apply(at, s.ops, e.family);
        stats[applied.late ? 'late' : 'applied']++;
        if (dedupe && !applied.late) f.remember(eventId, at, e.family, digest);
      }
    }
    return accounts;
  };
  const encoded = (accounts: Map<string, AccountFeatures>) =>
    Object.fromEntries(
      [...accounts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, f]) => [id, canonicalAccount(f)]),
    );

  it('the same events applied a second time change nothing, with or without event-id dedupe', () => {
    Object.assign(stats, { applied: 0, late: 0, replays: 0 });
    fc.assert(
      fc.property(events, fc.boolean(), (list, dedupe) => {
        const accounts = feed(new Map(), list, layout, dedupe);
        const once = encoded(accounts);
        feed(accounts, list, layout, dedupe);
        expect(encoded(accounts)).toEqual(once);
      }),
      { numRuns: 400, seed: SEED },
    );
    console.log(
      `[property] feature state, applied twice (seed ${SEED}): ${JSON.stringify(stats)} applications`,
    );
    // the generators reach late events and replays
    expect(stats.late).toBeGreaterThan(0);
    expect(stats.replays).toBeGreaterThan(0);
  });

  it("reordering that keeps each family's order and moves no event by more than the lateness gives byte-identical state", () => {
    let moved = 0;
    fc.assert(
      fc.property(
        events.chain((list) => fc.tuple(fc.constant(list), reordered(list))),
        fc.boolean(),
        ([list, other], dedupe) => {
          if (!isDeepStrictEqual(list, other)) moved++;
          const inOrder = encoded(feed(new Map(), list, layout, dedupe));
          expect(encoded(feed(new Map(), other, layout, dedupe))).toEqual(inOrder);
        },
      ),
      { numRuns: 400, seed: SEED },
    );
    console.log(
      `[property] feature state, reordered (seed ${SEED}): ${moved} orders differed from the original`,
    );
    expect(moved).toBeGreaterThan(100);
  });

  it('the encoded state written to Redis and read back decodes to the same bytes; entity sets match the in-memory backend', async () => {
    let written = 0;
    await fc.assert(
      fc.asyncProperty(events, async (list) => {
        const prefix = `prop-state-${Date.now().toString(36)}-${run++}`;
        const l = { ...layout, keyPrefix: prefix };
        const backend = new RedisStateBackend(redis, prefix);
        const memory = new MemoryStateBackend();
        try {
          const accounts = feed(new Map(), list, l, true);
          // as the engine does: every entity the events name is read (here: nothing stored yet)
          const named = new Map<string, EntityRef>();
          for (const e of list) for (const en of planEvent(e).entities) named.set(entityKey(en), en);
          const overlay = new EntityOverlay(
            new Map(
              [...named.keys()].map((k) => [k, { accounts: new Map<string, number>(), capped: false }]),
            ),
            l,
          );
          for (const e of list)
            for (const en of planEvent(e).entities)
              if (en.addAccount) overlay.see(en, en.addAccount, e.event.occurredAt);
          const write = {
            entities: overlay.updates(),
            accounts: [...accounts.values()].map((f) => ({
              accountId: f.accountId,
              bytes: encodeAccount(f),
            })),
            reviews: [],
          };
          await backend.write(write, 60_000);
          await memory.write(write);
          const read = await backend.readAccounts(write.accounts.map((a) => a.accountId));
          for (const [i, w] of write.accounts.entries()) {
            expect(read[i]?.equals(w.bytes), w.accountId).toBe(true);
            expect(encodeAccount(decodeAccount(w.accountId, read[i]!, l)).equals(w.bytes), w.accountId).toBe(
              true,
            );
            written++;
          }
          const refs = write.entities.map((u) => u.ref);
          expect(await backend.readEntities(refs)).toEqual(await memory.readEntities(refs));
        } finally {
          await backend.dropNamespace();
        }
      }),
      { numRuns: 150, seed: SEED },
    );
    console.log(
      `[property] feature state through Redis (seed ${SEED}): ${written} accounts written and read back`,
    );
    expect(written).toBeGreaterThan(150);
  });
});
