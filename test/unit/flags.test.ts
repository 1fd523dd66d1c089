import { describe, expect, expectTypeOf, it } from 'vitest';
import { SIGNALS } from '../../processors/registry.js';
import { REVIEW, flagIdFor, updateFlag, type ReviewFlag } from '../../src/domain/flags.js';
import { accountMitigations } from '../../src/domain/mitigations.js';
import { decide, type QueueDecision, type SignalSettings } from '../../src/domain/scoring.js';
import type { Config } from '../../config/schema.js';
import type { FlagState, StoredObservation } from '../../src/features/model.js';
import { PROCESSOR_VERSION } from '../../src/runtime/project.js';
import { DAY, MINUTE, T0, observation, shippedConfig, shippedPolicy } from '../support/snapshot.js';

const policy = shippedPolicy();
const cfg = policy.config;
const VERSION = shippedConfig().version;

/** Scenario B's signals, as the engine remembers them. */
const takeover: Record<string, StoredObservation> = {
  burst: observation('login.failed_burst', {
    observed: 12,
    threshold: 10,
    window: '15m',
    eventId: 'fail-12',
    observedAt: T0 + 55 * MINUTE,
    evidenceEventIds: ['fail-12', 'fail-11', 'fail-10'],
    summary: '12 failed logins in 15m',
  }),
  travel: observation('login.impossible_travel', {
    observed: 8635,
    threshold: 1000,
    window: 'consecutive logins',
    eventId: 'login-cn',
    observedAt: T0 + 58 * MINUTE,
    evidenceEventIds: ['login-us', 'login-cn'],
    summary: 'Milton, US to Changchun, CN: 8347 km in 58 min (8635 km/h)',
  }),
  device: observation('login.new_device', {
    eventId: 'login-cn',
    window: '90d',
    observedAt: T0 + 58 * MINUTE,
  }),
  country: observation('login.new_country', {
    eventId: 'login-cn',
    window: '90d',
    observedAt: T0 + 58 * MINUTE,
  }),
  card: observation('payment.added_after_risky_login', {
    eventId: 'card-added',
    window: '2h',
    observedAt: T0 + 65 * MINUTE,
    evidenceEventIds: ['login-cn', 'card-added'],
  }),
};

const mitigations = accountMitigations(
  { asOf: T0, context: { createdAt: T0 - 3 * 365 * DAY, identityVerified: true }, contracts: [] },
  cfg.mitigations,
);

function decisionFor(
  observations: StoredObservation[],
  queue = 'account_security',
  settings: ReadonlyMap<string, SignalSettings> = policy.settings,
): QueueDecision {
  const d = decide(observations, settings, mitigations, new Map(), T0, cfg).find((x) => x.queue === queue);
  if (!d) throw new Error(`no decision for ${queue}`);
  return d;
}

function update(
  decision: QueueDecision,
  open?: FlagState,
  o: { at?: number; generation?: number; eventId?: string; cfg?: Pick<Config, 'review' | 'queues'> } = {},
) {
  return updateFlag({
    accountId: 'acct-1',
    decision,
    open,
    generation: o.generation ?? 0,
    at: o.at ?? T0 + 70 * MINUTE,
    triggeringEventId: o.eventId ?? 'evt-trigger',
    cfg: o.cfg ?? cfg,
    configVersion: VERSION,
    processorVersion: PROCESSOR_VERSION,
  });
}

describe('flag id', () => {
  it('is the same for the same account, queue and generation, on every replay', () => {
    expect(flagIdFor('acct-1', 'account_security', 0)).toBe(flagIdFor('acct-1', 'account_security', 0));
    expect(flagIdFor('acct-1', 'account_security', 0)).toMatch(/^ff-[0-9a-f]{32}$/);
  });

  it('differs for another generation (after a flag was closed), queue or account', () => {
    const ids = new Set([
      flagIdFor('acct-1', 'account_security', 0),
      flagIdFor('acct-1', 'account_security', 1),
      flagIdFor('acct-1', 'identity', 0),
      flagIdFor('acct-2', 'account_security', 0),
    ]);
    expect(ids.size).toBe(4);
  });
});

describe('updateFlag', () => {
  // two families (login, payment); the new device and country arrive later
  const opening = decisionFor([takeover.burst!, takeover.travel!, takeover.card!]);

  it('opens a flag at revision 1 that explains itself', () => {
    expect(opening.severity).toBeDefined();
    const u = update(opening, undefined, { eventId: 'login-cn' })!;
    expect(u.flag).toMatchObject({
      flagId: flagIdFor('acct-1', 'account_security', 0),
      revision: 1,
      accountId: 'acct-1',
      reviewQueue: 'account_security',
      action: 'REVIEW',
      severity: opening.severity,
      score: opening.score,
      reviewThreshold: cfg.review.threshold,
      createdAt: T0 + 70 * MINUTE,
      updatedAt: T0 + 70 * MINUTE,
      triggeringEventId: 'login-cn',
      configVersion: VERSION,
      processorVersion: PROCESSOR_VERSION,
      notice: cfg.queues['account_security']!.notice,
    });
    expect(u.flag.signals.find((s) => s.id === 'login.impossible_travel')).toMatchObject({
      family: 'login',
      observed: 8635,
      threshold: 1000,
      window: 'consecutive logins',
      weight: 1.5,
      evidenceEventIds: ['login-us', 'login-cn'],
    });
    expect(u.flag.signals.map((s) => s.id).sort()).toEqual([
      'login.failed_burst',
      'login.impossible_travel',
      'payment.added_after_risky_login',
    ]);
    expect(u.flag.mitigations.map((m) => m.id)).toEqual(['tenure', 'verified_identity']);
    expect(u.state).toMatchObject({ flagId: u.flag.flagId, revision: 1, severity: opening.severity });
  });

  it('opens nothing for a decision without a severity', () => {
    const d = decisionFor([takeover.burst!, takeover.travel!]); // one family
    expect(d.severity).toBeUndefined();
    expect(update(d)).toBeUndefined();
  });

  it('does not re-emit when nothing changed (dedup)', () => {
    const first = update(opening)!;
    expect(update(opening, first.state, { at: T0 + 80 * MINUTE })).toBeUndefined();
  });

  it('re-emits when the signal set grows, keeping id and createdAt', () => {
    const first = update(opening)!;
    const grown = decisionFor([...Object.values(takeover)]);
    const second = update(grown, first.state, { at: T0 + 90 * MINUTE, eventId: 'card-added' })!;
    expect(second.flag).toMatchObject({
      flagId: first.flag.flagId,
      revision: 2,
      createdAt: first.flag.createdAt,
      updatedAt: T0 + 90 * MINUTE,
      triggeringEventId: 'card-added',
      action: 'REVIEW',
    });
    expect(second.flag.signals.map((s) => s.id)).toEqual(
      expect.arrayContaining(['login.new_device', 'login.new_country']),
    );
    expect(second.flag.signals).toHaveLength(5);
    // and then, with nothing new, stays quiet
    expect(update(grown, second.state, { at: T0 + 95 * MINUTE })).toBeUndefined();
  });

  it('re-emits when the severity rises on the same signals, never lowers it', () => {
    // the same three signals; the trip looks slower (1500 km/h) before a better location arrives
    const slowTrip = [takeover.burst!, { ...takeover.travel!, observed: 1500 }, takeover.card!];
    const weaker = decisionFor(slowTrip);
    const stronger = decisionFor([takeover.burst!, takeover.travel!, takeover.card!]);
    expect([weaker.severity, stronger.severity]).toEqual(['medium', 'high']);
    const first = update(weaker)!;
    const risen = update(stronger, first.state)!;
    expect(risen.flag).toMatchObject({ revision: 2, severity: 'high', flagId: first.flag.flagId });
    // the same signals at a lower severity change nothing
    expect(update(weaker, risen.state)).toBeUndefined();
    // new evidence at a lower score keeps the severity already reached
    const grownButLower = decisionFor([...slowTrip, takeover.device!]);
    expect(grownButLower.severity).toBe('medium');
    expect(update(grownButLower, risen.state)!.flag).toMatchObject({ revision: 3, severity: 'high' });
  });

  it('gives a flag of a later generation a new id', () => {
    const a = update(opening, undefined, { generation: 0 })!;
    const b = update(opening, undefined, { generation: 1 })!;
    expect(b.flag.flagId).not.toBe(a.flag.flagId);
    expect(b.flag.revision).toBe(1);
  });

  it('has no other action than REVIEW, in its type and in every flag it makes', () => {
    expectTypeOf<ReviewFlag['action']>().toEqualTypeOf<'REVIEW'>();
    expect(REVIEW).toBe('REVIEW');
    const flags = [
      update(opening)!.flag,
      update(decisionFor(Object.values(takeover)))!.flag,
      update(decisionFor([observation('contract.self_dealing', { observed: 3 })], 'contracts'))!.flag,
      update(
        decisionFor(
          [
            observation('payment.shared_instrument', { observed: 9, threshold: 3 }),
            observation('ip.shared_by_accounts', { observed: 8, threshold: 4 }),
          ],
          'identity',
        ),
      )!.flag,
    ];
    for (const f of flags) expect(f.action).toBe('REVIEW');
  });
});

describe('member-safe notice', () => {
  /** Everything in a flag that is for analysts only, as text a notice must not contain. */
  function analystOnly(flag: ReviewFlag): string[] {
    const numbers = [
      flag.score,
      flag.reviewThreshold,
      ...flag.signals.flatMap((s) => [s.observed, s.threshold, s.weight, s.strength, s.contribution]),
      ...flag.mitigations.map((m) => m.factor),
    ];
    return [
      ...new Set([
        ...numbers.map(String),
        ...flag.signals.flatMap((s) => [s.id, s.id.split('.')[1]!, s.window, s.summary]),
        ...SIGNALS.map((s) => s.id),
      ]),
    ];
  }
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  function leaks(flag: ReviewFlag): string[] {
    const text = [flag.notice.category, flag.notice.text, flag.notice.howToResolve].join('\n');
    return analystOnly(flag).filter((t) => new RegExp(`(^|[^\\w.])${escape(t)}($|[^\\w])`, 'i').test(text));
  }

  const byQueue = new Map<string, StoredObservation[]>();
  for (const s of SIGNALS) {
    const q = policy.settings.get(s.id)!.queue;
    byQueue.set(q, [
      ...(byQueue.get(q) ?? []),
      observation(s.id, { observed: 7, threshold: 2, window: '15m' }),
    ]);
  }

  // the shipped payments queue holds only payment signals, none sufficient alone: let them be, here
  const alone = new Map(
    [...policy.settings].map(([id, st]) => [id, { ...st, sufficientAlone: !st.definition.weak }]),
  );

  it.each([...byQueue.keys()])(
    'for %s says nothing the analyst sees: no numbers, windows or signal ids',
    (queue) => {
      const f = update(decisionFor(byQueue.get(queue)!, queue, alone))!.flag;
      expect(f.signals).toHaveLength(byQueue.get(queue)!.length);
      expect(f.notice).toEqual(cfg.queues[queue]!.notice);
      expect(f.notice.category.length).toBeGreaterThan(0);
      expect(f.notice.howToResolve.length).toBeGreaterThan(0);
      expect(leaks(f)).toEqual([]);
      expect(`${f.notice.category} ${f.notice.text} ${f.notice.howToResolve}`).not.toMatch(/\d/);
    },
  );

  it('the check catches a notice that gives detection details away', () => {
    const leaky = structuredClone(cfg);
    leaky.queues['account_security']!.notice.text =
      'We saw 12 failed logins (failed_burst) in 15m from a new device.';
    const f = update(decisionFor(Object.values(takeover)), undefined, { cfg: leaky })!.flag;
    expect(leaks(f)).toEqual(expect.arrayContaining(['12', 'failed_burst', '15m']));
  });

  it('falls back to a generic notice, also without numbers, for a queue without one', () => {
    const noNotices = { ...cfg, queues: {} };
    const f = update(decisionFor(Object.values(takeover)), undefined, { cfg: noNotices })!.flag;
    expect(f.notice.category).toBe('account_security');
    expect(leaks(f)).toEqual([]);
    expect(f.notice.text).not.toMatch(/\d/);
  });
});
