import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  accountMitigations,
  parsePattern,
  patternKey,
  type AccountMitigation,
} from '../../src/domain/mitigations.js';
import { decide, strengthOf, type QueueDecision, type SignalSettings } from '../../src/domain/scoring.js';
import type { ContractRecord, StoredObservation } from '../../src/features/model.js';
import { DAY, T0, observation, shippedPolicy } from '../support/snapshot.js';

const policy = shippedPolicy();
const cfg = policy.config;
const settings = policy.settings;

const obs = (id: string, observed: number, threshold: number) => observation(id, { observed, threshold });

function decideOne(
  observations: StoredObservation[],
  o: {
    mitigations?: AccountMitigation[];
    cleared?: Map<string, number>;
    settings?: ReadonlyMap<string, SignalSettings>;
    review?: Partial<typeof cfg.review>;
  } = {},
): QueueDecision {
  const decisions = decide(
    observations,
    o.settings ?? settings,
    o.mitigations ?? [],
    o.cleared ?? new Map(),
    T0,
    { ...cfg, review: { ...cfg.review, ...o.review } },
  );
  expect(decisions).toHaveLength(1);
  return decisions[0]!;
}

const contributionOf = (d: QueueDecision, id: string) =>
  d.signals.find((s) => s.observation.signalId === id)!.contribution;

/** Settings with some fields changed (as an analyst could in config). */
function tuned(changes: Record<string, Partial<SignalSettings>>): Map<string, SignalSettings> {
  return new Map([...settings].map(([id, s]) => [id, { ...s, ...changes[id] }]));
}

// A verified account three years old with a long-running, regularly paid contract.
const established = {
  context: { createdAt: T0 - 3 * 365 * DAY, identityVerified: true },
  contracts: [
    {
      contractId: 'contract-14m',
      counterpart: 'client-7',
      role: 'freelancer',
      startedAt: T0 - 425 * DAY,
      lastPaidAt: T0 - 5 * DAY,
    } satisfies ContractRecord,
  ],
};

describe('strength', () => {
  it('is observed / threshold', () => {
    expect(strengthOf({ observed: 12, threshold: 10 }, 3)).toBe(1.2);
    expect(strengthOf({ observed: 10, threshold: 3 }, 5)).toBe(3.333);
  });

  it('is at least 1 and capped at maxStrength', () => {
    expect(strengthOf({ observed: 5, threshold: 10 }, 3)).toBe(1);
    expect(strengthOf({ observed: 0, threshold: 10 }, 3)).toBe(1);
    expect(strengthOf({ observed: 500, threshold: 10 }, 3)).toBe(3);
    expect(strengthOf({ observed: 500, threshold: 10 }, 1)).toBe(1);
    expect(strengthOf({ observed: 3, threshold: 0 }, 2.5)).toBe(2.5);
    // found by the property test (seed -1186862183): infinity over infinity was NaN
    expect(strengthOf({ observed: Infinity, threshold: Infinity }, 3)).toBe(1);
    expect(strengthOf({ observed: Infinity, threshold: 10 }, 3)).toBe(3);
  });

  it('stays within a maxStrength finer than its 3-decimal rounding', () => {
    expect(strengthOf({ observed: 0, threshold: 0 }, 1.9945)).toBe(1.9945);
    expect(strengthOf({ observed: 50, threshold: 10 }, 2.0005)).toBe(2.0005);
  });
});

describe('scoring', () => {
  const takeover = [obs('login.failed_burst', 20, 10), obs('payment.added_after_risky_login', 1, 1)];

  it('weighs each signal by its configured weight and strength', () => {
    const d = decideOne(takeover);
    expect(d.queue).toBe('account_security');
    const [burst, card] = [
      d.signals.find((s) => s.observation.signalId === 'login.failed_burst')!,
      d.signals.find((s) => s.observation.signalId === 'payment.added_after_risky_login')!,
    ];
    expect(burst).toMatchObject({ weight: 1.0, strength: 2, contribution: 2, strong: false, weak: false });
    expect(card).toMatchObject({ weight: 1.5, strength: 1, contribution: 1.5, strong: true });
    expect(d.score).toBe(3.5);
    expect(d.threshold).toBe(2.0);
  });

  it('multiplies the score by each mitigation', () => {
    const mitigations = accountMitigations(
      { asOf: T0, context: established.context, contracts: [] },
      cfg.mitigations,
    );
    expect(mitigations.map((m) => [m.id, m.factor])).toEqual([
      ['tenure', 0.8],
      ['verified_identity', 0.8],
    ]);
    const d = decideOne(takeover, { mitigations });
    expect(d.mitigations).toEqual(mitigations.map(({ id, factor, effect }) => ({ id, factor, effect })));
    expect(contributionOf(d, 'login.failed_burst')).toBe(1.28); // 2 x 0.8 x 0.8
    expect(contributionOf(d, 'payment.added_after_risky_login')).toBe(0.96); // 1.5 x 0.64, above the floor
    expect(d.score).toBe(2.24);
  });

  it('never takes a strong signal below strongSignalFloor of its contribution', () => {
    const mitigations = accountMitigations({ asOf: T0, ...established }, cfg.mitigations);
    expect(mitigations.map((m) => m.id)).toEqual(['tenure', 'verified_identity', 'long_running_contract']);
    const d = decideOne(takeover, { mitigations });
    // product 0.8 x 0.8 x 0.6 = 0.384 < floor 0.5
    expect(contributionOf(d, 'login.failed_burst')).toBe(0.768);
    expect(contributionOf(d, 'payment.added_after_risky_login')).toBe(1.5 * cfg.review.strongSignalFloor);
  });

  it('never takes any signal to zero, even with every mitigation and a cleared review', () => {
    const mitigations = accountMitigations(
      {
        asOf: T0,
        context: { ...established.context, lifetimeCompletedContracts: 80 },
        contracts: established.contracts,
      },
      cfg.mitigations,
    );
    const cleared = new Map([['account_security:login+payment', T0 + 10 * DAY]]);
    const d = decideOne(takeover, { mitigations, cleared });
    expect(d.mitigations.map((m) => m.id)).toEqual([
      'tenure',
      'verified_identity',
      'contract_history',
      'long_running_contract',
      'cleared_review',
    ]);
    for (const s of d.signals) expect(s.contribution).toBeGreaterThan(0);
    expect(contributionOf(d, 'payment.added_after_risky_login')).toBe(0.75);
    expect(d.score).toBeLessThan(cfg.review.threshold);
    expect(d.severity).toBeUndefined();
  });

  it('a cleared review suppresses the same pattern whatever it scores, only until its cooldown ends', () => {
    const until = T0 + DAY;
    const key = patternKey('account_security', takeover);
    expect(key).toBe('account_security:login+payment|login.failed_burst,payment.added_after_risky_login');
    const d = decideOne(takeover, { cleared: new Map([[key, until]]) });
    expect(d.score).toBeGreaterThan(cfg.review.threshold);
    expect(d).toMatchObject({ clearedByReview: true, corroborated: true });
    expect(d.severity).toBeUndefined();
    // a human decision, not a discount: no factor, and the reviewer's pattern named
    expect(d.mitigations).toEqual([
      {
        id: 'cleared_review',
        factor: 1,
        effect:
          'a review cleared this pattern (account_security: login + payment (login.failed_burst, payment.added_after_risky_login)): not raised again until its cooldown ends 2025-03-04T09:00:00.000Z (in 1d)',
      },
    ]);
    // the same pattern with a weak signal more is the same pattern
    expect(
      decideOne([...takeover, obs('login.new_country', 1, 1)], { cleared: new Map([[key, until]]) }).severity,
    ).toBeUndefined();
    // at the end of the cooldown it is judged normally again
    expect(decideOne(takeover, { cleared: new Map([[key, T0]]) })).toMatchObject({
      severity: 'medium',
      mitigations: [],
    });
    // a record from before signals were part of the key covers by families
    expect(
      decideOne(takeover, { cleared: new Map([['account_security:login+payment', until]]) }).severity,
    ).toBeUndefined();
  });

  it('a genuinely new pattern still reaches review and names the related cleared one', () => {
    const until = T0 + DAY;
    const travel = [obs('login.impossible_travel', 8000, 1000), obs('payment.added_after_risky_login', 1, 1)];
    const cleared = new Map([[patternKey('account_security', travel), until]]);
    // a failed-login burst was not part of what the reviewer cleared
    const d = decideOne([...travel, obs('login.failed_burst', 12, 10)], { cleared });
    expect(d.severity).toBe('high');
    expect(d.clearedByReview).toBeUndefined();
    expect(d.mitigations.map((m) => [m.id, m.factor])).toEqual([['cleared_review', 1]]);
    expect(d.mitigations[0]!.effect).toMatch(
      /^an earlier review cleared a related pattern \(account_security: login \+ payment/,
    );
    expect(d.mitigations[0]!.effect).toMatch(/new here: login\.failed_burst$/);
    // another queue's clearance says nothing about this one
    const other = new Map([['identity:ip+payment|ip.shared_by_accounts,payment.shared_instrument', until]]);
    expect(decideOne(travel, { cleared: other }).mitigations).toEqual([]);
  });

  it('a cleared pattern key reads back as it was written', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(cfg.queues)),
        fc.subarray([...settings.keys()], { minLength: 1 }),
        (queue, ids) => {
          const signals = ids.map((id) => obs(id, 1, 1));
          expect(parsePattern(patternKey(queue, signals))).toEqual({
            queue,
            families: [...new Set(signals.map((s) => s.family))].sort(),
            signals: [...ids].sort(),
          });
        },
      ),
    );
  });

  it('makes contributions add up to the score', () => {
    const mitigations = accountMitigations({ asOf: T0, ...established }, cfg.mitigations);
    const sets = [
      takeover,
      [
        obs('login.failed_burst', 12, 10),
        obs('login.impossible_travel', 8635, 1000),
        obs('login.new_device', 1, 1),
        obs('login.new_country', 1, 1),
        obs('payment.added_after_risky_login', 1, 1),
      ],
      [obs('contract.self_dealing', 2, 1), obs('contract.dispute_rate', 7, 3)],
    ];
    for (const set of sets)
      for (const m of [[], mitigations]) {
        const d = decideOne(set, { mitigations: m });
        expect(d.signals.reduce((t, s) => t + s.contribution, 0)).toBeCloseTo(d.score, 3);
      }
  });

  it('ignores observations of signals no longer in the config', () => {
    const disabled = new Map([...settings].filter(([id]) => id !== 'login.failed_burst'));
    const d = decideOne(takeover, { settings: disabled });
    expect(d.signals.map((s) => s.observation.signalId)).toEqual(['payment.added_after_risky_login']);
  });
});

describe('corroboration', () => {
  it('flags when two families agree', () => {
    const d = decideOne([obs('login.failed_burst', 20, 10), obs('payment.added_after_risky_login', 1, 1)]);
    expect(d).toMatchObject({
      corroborated: true,
      families: ['login', 'payment'],
      corroboration: '2 families (login, payment)',
      severity: 'medium',
    });
  });

  it('does not flag one family, however high its score, unless a signal is sufficient alone', () => {
    const d = decideOne([obs('login.failed_burst', 50, 10), obs('login.impossible_travel', 9000, 1000)]);
    expect(d.score).toBeGreaterThan(cfg.review.severities.at(-1)!.minScore);
    expect(d).toMatchObject({
      corroborated: false,
      corroboration: '1 family (login); 2 needed or a signal sufficient alone',
    });
    expect(d.severity).toBeUndefined();
    expect(decideOne([obs('contract.dispute_rate', 9, 3)]).severity).toBeUndefined();
  });

  it('flags one family when a signal is sufficient alone', () => {
    for (const [id, severity] of [
      ['contract.self_dealing', 'low'],
      // weighted 4: at the threshold even at the strong-signal floor (see config/default.yaml)
      ['contract.first_payment_then_dispute', 'medium'],
    ] as const) {
      const d = decideOne([obs(id, 1, 1)]);
      expect(d).toMatchObject({
        corroborated: true,
        corroboration: `${id} is sufficient alone`,
        severity,
      });
    }
    const loop = decideOne([obs('contract.rapid_feedback_loop', 3, 3), obs('contract.dispute_rate', 1, 3)]);
    expect(loop.corroboration).toBe('contract.rapid_feedback_loop is sufficient alone');
  });

  it('does not count a weak signal as the second family', () => {
    const d = decideOne([obs('login.failed_burst', 30, 10), obs('ip.anonymizer_share', 1, 0.6)]);
    expect(d.score).toBeGreaterThan(cfg.review.threshold);
    expect(d).toMatchObject({
      corroborated: false,
      families: ['ip', 'login'],
      corroboration: '1 family (login); 2 needed or a signal sufficient alone',
    });
    expect(d.severity).toBeUndefined();
  });

  it('counts families within one review queue: signals in different queues do not corroborate', () => {
    const decisions = decide(
      [obs('login.failed_burst', 30, 10), obs('payment.method_velocity', 9, 3)],
      settings,
      [],
      new Map(),
      T0,
      cfg,
    );
    expect(decisions.map((d) => [d.queue, d.corroborated, d.severity])).toEqual([
      ['account_security', false, undefined],
      ['payments', false, undefined],
    ]);
  });

  describe('weak signals', () => {
    // new country + new device (login) and anonymizer share + churn (ip): the travelling freelancer
    const weakOnly = [
      obs('login.new_country', 1, 1),
      obs('login.new_device', 1, 1),
      obs('ip.anonymizer_share', 1, 0.6),
      obs('ip.churn', 40, 10),
    ];

    it('never flag on their own, even from two families and over the review threshold', () => {
      const d = decideOne(weakOnly);
      expect(d.families).toEqual(['ip', 'login']);
      expect(d.score).toBeGreaterThanOrEqual(cfg.review.threshold);
      expect(d).toMatchObject({
        corroborated: false,
        corroboration: 'only weak signals: never enough on their own',
      });
      expect(d.severity).toBeUndefined();
    });

    it('never flag even if weighted heavily or (bypassing config validation) marked sufficient alone', () => {
      const heavy = tuned(
        Object.fromEntries(
          weakOnly.map((o) => [o.signalId, { weight: 10, sufficientAlone: true, maxStrength: 10 }]),
        ),
      );
      const d = decideOne(weakOnly, { settings: heavy });
      expect(d.score).toBeGreaterThan(40);
      expect(d.severity).toBeUndefined();
      expect(decideOne([weakOnly[0]!], { settings: heavy }).severity).toBeUndefined();
    });
  });
});

describe('severity bands', () => {
  // two families in one queue, each weight 1, so the score is the sum of two strengths
  const flat = tuned({
    'login.failed_burst': { weight: 1, maxStrength: 10 },
    'payment.added_after_risky_login': { weight: 1, maxStrength: 10, strong: false },
  });
  const scoreOf = (burst: number, card = 1) =>
    decideOne([obs('login.failed_burst', burst * 10, 10), obs('payment.added_after_risky_login', card, 1)], {
      settings: flat,
    });

  it.each([
    [1, 1, 2, 'low'],
    [1.999, 1, 2.999, 'low'],
    [2, 1, 3, 'medium'],
    [3, 1.499, 4.499, 'medium'],
    [3, 1.5, 4.5, 'high'],
    [9, 1, 10, 'high'],
  ])('strengths %s + %s: score %s is %s', (burst, card, score, band) => {
    const d = scoreOf(burst, card);
    expect(d.score).toBe(score);
    expect(d.severity).toBe(band);
  });

  it('gives no severity below the review threshold, even when corroborated', () => {
    const d = decideOne([obs('login.failed_burst', 10, 10), obs('payment.added_after_risky_login', 1, 1)], {
      settings: flat,
      review: { threshold: 2.5, severities: [{ name: 'low', minScore: 2.5 }] },
    });
    expect(d).toMatchObject({ score: 2, corroborated: true, threshold: 2.5 });
    expect(d.severity).toBeUndefined();
  });
});

describe('mitigation scope', () => {
  const everything = accountMitigations(
    {
      asOf: T0,
      context: { ...established.context, lifetimeCompletedContracts: 80 },
      contracts: established.contracts,
    },
    cfg.mitigations,
  );

  it('ships each mitigation with the concerns it speaks to', () => {
    expect(Object.fromEntries(everything.map((m) => [m.id, m.appliesTo]))).toEqual({
      tenure: ['account_security', 'identity', 'payments', 'contracts'],
      verified_identity: ['account_security', 'identity'],
      contract_history: ['contracts', 'account_security'],
      long_running_contract: ['contracts', 'account_security'],
    });
  });

  it('dampens only the queues a mitigation applies to, and says why the others do not', () => {
    const d = decideOne([obs('contract.self_dealing', 1, 1)], { mitigations: everything });
    expect(d.queue).toBe('contracts');
    expect(d.mitigations.map((m) => m.id)).toEqual(['tenure', 'contract_history', 'long_running_contract']);
    expect(d.notApplicable).toEqual([
      {
        id: 'verified_identity',
        reason:
          'identity verified, but it says nothing about contracts concerns (it dampens account_security, identity)',
      },
    ]);
    const shared = decideOne([obs('payment.shared_instrument', 5, 3), obs('ip.shared_by_accounts', 5, 4)], {
      mitigations: everything,
    });
    expect(shared.queue).toBe('identity');
    expect(shared.mitigations.map((m) => m.id)).toEqual(['tenure', 'verified_identity']);
    expect(shared.notApplicable.map((m) => m.id)).toEqual(['contract_history', 'long_running_contract']);
  });

  it('a new account disputed for non-delivery after its first payment reaches review with any mitigation that could apply', () => {
    // every subset of what an account can have (as the config defines it), however unlikely at 30 days
    fc.assert(
      fc.property(fc.subarray(everything), (mitigations) => {
        const d = decideOne([obs('contract.first_payment_then_dispute', 1, 1)], { mitigations });
        expect(d.severity).toBeDefined();
        expect(d.score).toBeGreaterThanOrEqual(d.threshold);
        expect(d.mitigations.map((m) => m.id)).not.toContain('verified_identity');
      }),
    );
  });
});
