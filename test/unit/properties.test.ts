// Properties that hold for any input, checked with fast-check.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SIGNALS } from '../../processors/registry.js';
import type { AccountMitigation } from '../../src/domain/mitigations.js';
import { decide, strengthOf, type SignalSettings } from '../../src/domain/scoring.js';
import { FAMILIES, type Family } from '../../src/domain/events.js';
import { InvalidEventError, validateActivity } from '../../src/ingest/validate.js';
import { ConfigError, DEFAULT_CONFIG_FILE, validateConfig } from '../../src/runtime/config-loader.js';
import { T0, observation, shippedConfig, shippedPolicy } from '../support/snapshot.js';

const RUNS = { numRuns: 300 };

/** Throws `what` or returns; anything else thrown fails the property. */
function throwsOnly(what: new (...args: never[]) => Error, f: () => unknown): boolean {
  try {
    f();
  } catch (err) {
    if (!(err instanceof what)) throw err;
  }
  return true;
}

describe('config validator', () => {
  const defaults = parseYaml(readFileSync(DEFAULT_CONFIG_FILE, 'utf8')) as Record<string, unknown>;

  /** Every key the config knows, so random trees reach past the top level. */
  const knownKeys = (() => {
    const keys = new Set<string>();
    const walk = (v: unknown) => {
      if (v && typeof v === 'object')
        for (const [k, c] of Object.entries(v)) {
          if (!Array.isArray(v)) keys.add(k);
          walk(c);
        }
    };
    walk(defaults);
    return [...keys];
  })();

  const scalar = fc.oneof(
    fc.string(),
    fc.constantFrom('review', 'suspend', '15m', 'soon', '0', '-1', '', 'account_security', 'true'),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
  );
  const { tree } = fc.letrec<{ tree: unknown }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalar,
      fc.array(tie('tree'), { maxLength: 4 }),
      fc.dictionary(fc.oneof(fc.constantFrom(...knownKeys), fc.string()), tie('tree'), { maxKeys: 6 }),
    ),
  }));

  /** A path into the default tree, and what to do there. */
  const paths: string[][] = [];
  (function walk(v: unknown, path: string[]) {
    if (path.length) paths.push(path);
    if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(c, [...path, k]);
  })(defaults, []);
  const mutation = fc.record({
    path: fc.constantFrom(...paths),
    change: fc.oneof(
      fc.record({ kind: fc.constant('set' as const), value: tree }),
      fc.record({ kind: fc.constant('delete' as const) }),
      fc.record({ kind: fc.constant('add' as const), key: fc.string(), value: tree }),
      // what a YAML anchor and alias can make: a node that contains itself
      fc.record({ kind: fc.constant('cycle' as const) }),
    ),
  });
  type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;
  function mutate(base: unknown, muts: Mutation[]): unknown {
    const root = structuredClone(base) as Record<string, unknown>;
    for (const { path, change } of muts) {
      let node: Record<string, unknown> = root;
      for (const k of path.slice(0, -1)) {
        const next = node[k];
        if (!next || typeof next !== 'object') return root;
        node = next as Record<string, unknown>;
      }
      const last = path[path.length - 1]!;
      if (change.kind === 'set') node[last] = change.value;
      else if (change.kind === 'delete') delete node[last];
      else if (change.kind === 'add') {
        const target = node[last];
        if (target && typeof target === 'object')
          (target as Record<string, unknown>)[change.key] = change.value;
      } else node[last] = node;
    }
    return root;
  }

  it('throws nothing but ConfigError for arbitrary YAML-ish trees', () => {
    fc.assert(
      fc.property(tree, (t) => throwsOnly(ConfigError, () => validateConfig(t, ['property']))),
      RUNS,
    );
  });

  it('throws nothing but ConfigError for the default config with random changes, and lists each problem', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (muts) => {
        try {
          validateConfig(mutate(defaults, muts), ['property']);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          expect(err.problems.length).toBeGreaterThan(0);
          // "<path>: <what is allowed>, got <value>" or "<path>: unknown setting"
          for (const p of err.problems) expect(p).toMatch(/^.+?: (.+, got .+|unknown setting)$/s);
        }
        return true;
      }),
      RUNS,
    );
  });

  it('never accepts another action, wherever the tree is changed', () => {
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 4 }), (muts) => {
        try {
          const { config } = validateConfig(mutate(defaults, muts), ['property']);
          expect(config.review.action).toBe('review');
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
        }
        return true;
      }),
      RUNS,
    );
  });
});

describe('event validation', () => {
  const limits = shippedConfig().config.validation;
  const NOW = T0;

  // Values of each Avro type: anything the decoder can hand over, sensible or not.
  const anyString = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme', maxLength: 200 }),
    fc.string({ minLength: 120, maxLength: 400 }),
    fc.constantFrom(
      '',
      ' ',
      'acct-1',
      'a{b}c',
      'a b',
      'ff:{acct}',
      '216.160.83.56',
      '::1',
      '999.1.1.1',
      '::ffff:1.2.0.1',
    ),
  );
  const anyLong = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.constantFrom(
      NOW,
      NOW + 10 * 60_000,
      0,
      -1,
      Number.MAX_SAFE_INTEGER,
      Date.parse(limits.minEventTime) - 1,
    ),
  );
  const anyInt = fc.oneof(fc.integer(), fc.integer({ min: -2, max: 7 }));
  const anyDouble = fc.double();
  const nullable = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
  const base = { eventId: anyString, accountId: anyString, occurredAt: anyLong };

  const records: Record<Family, fc.Arbitrary<Record<string, unknown>>> = {
    login: fc.record({
      ...base,
      outcome: fc.constantFrom('SUCCESS', 'FAILURE', 'LOGOUT'),
      ip: anyString,
      deviceId: nullable(anyString),
      sessionId: nullable(anyString),
    }),
    ip: fc.record({
      ...base,
      ip: anyString,
      source: anyString,
      deviceId: nullable(anyString),
      sessionId: nullable(anyString),
    }),
    payment: fc.record({
      ...base,
      action: fc.constantFrom('ADDED', 'REMOVED', 'VERIFICATION_SUCCEEDED', 'VERIFICATION_FAILED'),
      methodId: anyString,
      methodType: fc.constantFrom('CARD', 'BANK_ACCOUNT', 'WALLET', 'OTHER'),
      instrumentFingerprint: anyString,
      ip: nullable(anyString),
      deviceId: nullable(anyString),
    }),
    contract: fc.record({
      ...base,
      contractId: anyString,
      clientAccountId: anyString,
      freelancerAccountId: anyString,
      action: fc.constantFrom('STARTED', 'MILESTONE_PAID', 'ENDED', 'DISPUTED', 'REFUNDED'),
      amount: nullable(anyDouble),
      currency: nullable(anyString),
      rating: nullable(anyInt),
      disputeReason: nullable(fc.constantFrom('NON_DELIVERY', 'QUALITY', 'SCOPE', 'OTHER')),
      ip: nullable(anyString),
      deviceId: nullable(anyString),
    }),
    account: fc.record({
      ...base,
      action: fc.constantFrom(
        'CREATED',
        'IDENTITY_VERIFIED',
        'IDENTITY_VERIFICATION_FAILED',
        'STATS_UPDATED',
      ),
      accountType: nullable(fc.constantFrom('FREELANCER', 'CLIENT', 'AGENCY')),
      lifetimeCompletedContracts: nullable(anyInt),
      lifetimePaidHours: nullable(anyDouble),
      lifetimeEarnings: nullable(anyDouble),
      ip: nullable(anyString),
      deviceId: nullable(anyString),
    }),
  };

  it.each(FAMILIES)('throws nothing but InvalidEventError for arbitrary %s field values', (family) => {
    fc.assert(
      fc.property(records[family], (r) =>
        throwsOnly(InvalidEventError, () => validateActivity(family, r, limits, NOW)),
      ),
      RUNS,
    );
  });

  it('rejects an event time past the last date JavaScript can represent, instead of crashing', () => {
    const e = {
      eventId: 'evt-1',
      accountId: 'acct-1',
      occurredAt: 8_640_000_000_000_001,
      ip: '216.160.83.56',
    };
    const r = { ...e, outcome: 'SUCCESS', deviceId: null, sessionId: null };
    expect(() => validateActivity('login', r, limits, NOW)).toThrow(
      new InvalidEventError('occurredAt', '8640000000000001 is more than 300s in the future'),
    );
  });

  it('rejects an event time with a fraction of a millisecond, naming the field', () => {
    const r = {
      eventId: 'evt-1',
      accountId: 'acct-1',
      occurredAt: NOW - 0.5,
      ip: '216.160.83.56',
      outcome: 'SUCCESS',
      deviceId: null,
      sessionId: null,
    };
    expect(() => validateActivity('login', r, limits, NOW)).toThrow(
      new InvalidEventError('occurredAt', `${NOW - 0.5} is not a whole number of milliseconds`),
    );
    expect(validateActivity('login', { ...r, occurredAt: NOW - 1 }, limits, NOW).event.occurredAt).toBe(
      NOW - 1,
    );
  });

  it('names the field it rejects, and accepts what it should', () => {
    fc.assert(
      fc.property(records.contract, (r) => {
        try {
          const ok = validateActivity('contract', r, limits, NOW);
          // what passes is usable: ids are safe for store keys, times plausible, ratings 1-5
          const e = ok.event as unknown as Record<string, unknown>;
          for (const k of ['eventId', 'accountId', 'contractId', 'clientAccountId', 'freelancerAccountId'])
            expect(e[k]).toMatch(/^[A-Za-z0-9._:@/+=-]{1,128}$/);
          expect(e['occurredAt']).toBeGreaterThanOrEqual(Date.parse(limits.minEventTime));
          expect(Number.isInteger(e['occurredAt'])).toBe(true);
          if (e['rating'] !== null) expect(e['rating']).toBeGreaterThanOrEqual(1);
          if (e['amount'] !== null) expect(Number.isFinite(e['amount'])).toBe(true);
        } catch (err) {
          if (!(err instanceof InvalidEventError)) throw err;
          expect(Object.keys(r)).toContain(err.field);
          expect(err.message.startsWith(`${err.field}: `)).toBe(true);
        }
        return true;
      }),
      RUNS,
    );
    const good = {
      eventId: 'evt-1',
      accountId: 'free-1',
      occurredAt: NOW,
      contractId: 'contract-1',
      clientAccountId: 'client-1',
      freelancerAccountId: 'free-1',
      action: 'ENDED',
      amount: null,
      currency: null,
      rating: 5,
      disputeReason: null,
      ip: '216.160.83.56',
      deviceId: null,
    };
    expect(validateActivity('contract', good, limits, NOW).event).toEqual(good);
  });
});

describe('scoring', () => {
  const policy = shippedPolicy();
  const cfg = policy.config;

  it('keeps strength within [1, maxStrength]', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, noNaN: true }),
        fc.double({ min: 0, noNaN: true }),
        fc.double({ min: 1, max: 1000, noNaN: true }),
        (observed, threshold, maxStrength) => {
          const s = strengthOf({ observed, threshold }, maxStrength);
          expect(s).toBeGreaterThanOrEqual(1);
          expect(s).toBeLessThanOrEqual(maxStrength);
          return true;
        },
      ),
      { numRuns: 1000 },
    );
  });

  const weakIds = SIGNALS.filter((s) => s.weak).map((s) => s.id);
  const queues = Object.keys(cfg.queues);
  const weakObservation = fc
    .record({
      id: fc.constantFrom(...weakIds),
      observed: fc.double({ min: 0, max: 1e6, noNaN: true }),
      threshold: fc.double({ min: 0, max: 1e6, noNaN: true }),
      observedAt: fc.integer({ min: T0 - 86_400_000, max: T0 }),
    })
    .map((o) => observation(o.id, o));
  const tunedSettings = fc
    .array(
      fc.record({
        weight: fc.double({ min: 0.01, max: 100, noNaN: true }),
        maxStrength: fc.double({ min: 1, max: 100, noNaN: true }),
        queue: fc.constantFrom(...queues),
        strong: fc.boolean(),
        // not allowed by config validation, but decide() must hold the line on its own too
        sufficientAlone: fc.boolean(),
      }),
      { minLength: weakIds.length, maxLength: weakIds.length },
    )
    .map(
      (tunings) =>
        new Map<string, SignalSettings>(
          [...policy.settings].map(([id, s]) => {
            const i = weakIds.indexOf(id);
            return [id, i < 0 ? s : { ...s, ...tunings[i] }];
          }),
        ),
    );
  const mitigations = fc.array(
    fc.record({
      id: fc.constantFrom('tenure', 'verified_identity'),
      factor: fc.double({ min: 0.01, max: 1, noNaN: true }),
      effect: fc.constant('x'),
      fact: fc.constant('x'),
      appliesTo: fc.constant(Object.keys(cfg.queues)),
    }),
    { maxLength: 3 },
  ) as fc.Arbitrary<AccountMitigation[]>;
  const review = fc.record({
    threshold: fc.double({ min: 0.01, max: 10, noNaN: true }),
    minFamilies: fc.integer({ min: 1, max: 3 }),
  });

  it('never gives a severity to weak-only observation sets, however tuned', () => {
    fc.assert(
      fc.property(
        fc.array(weakObservation, { minLength: 1, maxLength: 8 }),
        tunedSettings,
        mitigations,
        review,
        (obs, settings, mits, r) => {
          const decisions = decide(obs, settings, mits, new Map(), T0, {
            ...cfg,
            review: { ...cfg.review, ...r, severities: [{ name: 'low', minScore: r.threshold }] },
          });
          expect(decisions.length).toBeGreaterThan(0);
          for (const d of decisions) {
            expect(d.corroborated).toBe(false);
            expect(d.severity).toBeUndefined();
          }
          return true;
        },
      ),
      RUNS,
    );
  });

  it('makes contributions add up to the score, and never takes a strong signal below its floor', () => {
    const anyObservation = fc
      .record({
        id: fc.constantFrom(...SIGNALS.map((s) => s.id)),
        observed: fc.double({ min: 0, max: 1e6, noNaN: true }),
        threshold: fc.double({ min: 0.001, max: 1e6, noNaN: true }),
      })
      .map((o) => observation(o.id, o));
    fc.assert(
      fc.property(fc.array(anyObservation, { minLength: 1, maxLength: 10 }), mitigations, (obs, mits) => {
        for (const d of decide(obs, policy.settings, mits, new Map(), T0, cfg)) {
          expect(d.signals.reduce((t, s) => t + s.contribution, 0)).toBeCloseTo(d.score, 2);
          for (const s of d.signals) {
            // only strong signals are promised a floor; others may be damped to (rounded) zero
            expect(s.contribution).toBeGreaterThanOrEqual(0);
            if (s.strong) expect(s.contribution).toBeGreaterThan(0);
            if (s.strong)
              expect(s.contribution).toBeGreaterThanOrEqual(
                s.weight * s.strength * cfg.review.strongSignalFloor - 0.0005,
              );
          }
        }
        return true;
      }),
      RUNS,
    );
  });
});
