// Review outcomes as a backtest's labels (src/tools/review-labels.ts): the join of flags to the
// reviewers' decisions and the precision counted from it, in memory.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ReviewOutcome } from '../../src/domain/events.js';
import { REVIEW, flagIdFor, type ReviewFlag } from '../../src/domain/flags.js';
import { accountLabels, labelFlags, reportLabels } from '../../src/tools/review-labels.js';
import { HOUR, T0 } from '../support/snapshot.js';

function flag(
  accountId: string,
  queue: string,
  signals: string[],
  createdAt = T0,
  generation = 0,
): ReviewFlag {
  return {
    flagId: flagIdFor(accountId, queue, generation),
    revision: 1,
    accountId,
    reviewQueue: queue,
    action: REVIEW,
    severity: 'medium',
    score: 2.5,
    reviewThreshold: 2,
    createdAt,
    updatedAt: createdAt,
    triggeringEventId: `ev-${accountId}`,
    signals: signals.map((id) => ({
      id,
      family: id.split('.')[0]!,
      observed: 1,
      threshold: 1,
      window: '1h',
      weight: 1,
      strength: 1,
      contribution: 1,
      summary: id,
      evidenceEventIds: [],
      observedAt: createdAt,
    })),
    mitigations: [],
    notApplicableMitigations: [],
    historyUnknown: false,
    notice: { category: 'c', text: 't', howToResolve: 'h' },
    configVersion: 'cfg',
    processorVersion: 'p',
  };
}

let n = 0;
const outcome = (
  f: Pick<ReviewFlag, 'flagId' | 'accountId'>,
  decision: ReviewOutcome['outcome'],
  decidedAt = T0 + HOUR,
): ReviewOutcome => ({
  outcomeId: `o-${++n}`,
  flagId: f.flagId,
  accountId: f.accountId,
  outcome: decision,
  noteCategory: null,
  decidedAt,
});

describe('labelling flags with review outcomes', () => {
  it('joins a flag to the decision on its own id, the latest decision winning', () => {
    const f = flag('a', 'identity', ['ip.shared_by_accounts']);
    const more = outcome(f, 'NEEDS_MORE_INFO', T0 + HOUR);
    const final = outcome(f, 'CONFIRMED', T0 + 2 * HOUR);
    for (const order of [
      [more, final],
      [final, more],
    ]) {
      const [l] = labelFlags([f], order);
      expect(l).toMatchObject({ label: 'CONFIRMED', via: 'flag', outcome: final });
    }
  });

  it("labels a flag production never raised by the account's later decision, never an earlier one", () => {
    const produced = flag('a', 'identity', ['ip.shared_by_accounts'], T0);
    // the candidate raises another queue's flag for the same account, before and after the review
    const early = flag('a', 'account_security', ['login.new_country'], T0 + 30 * 60_000);
    const late = flag('b', 'account_security', ['login.new_country'], T0 + 3 * HOUR);
    const o = outcome(produced, 'CLEARED', T0 + HOUR);
    const lateOther = outcome(flag('b', 'identity', []), 'CONFIRMED', T0 + 2 * HOUR);
    const byAccount = new Map(labelFlags([early, late], [o, lateOther]).map((l) => [l.flag.accountId, l]));
    expect(byAccount.get('a')).toMatchObject({ label: 'CLEARED', via: 'account' });
    // b's only decision came before b's candidate flag existed: not a label for it
    expect(byAccount.get('b')).toMatchObject({ label: 'NOT_REVIEWED', via: null });
  });

  it('gives the same labels whatever order the outcomes arrive in (property)', () => {
    const flags = ['a', 'b', 'c'].map((a, i) => flag(a, i % 2 ? 'identity' : 'contracts', ['x.y'], T0 + i));
    const decision = fc.constantFrom<ReviewOutcome['outcome']>('CLEARED', 'CONFIRMED', 'NEEDS_MORE_INFO');
    const anOutcome = fc
      .tuple(fc.nat(2), decision, fc.integer({ min: -2, max: 5 }), fc.boolean())
      .map(([i, d, h, own]) =>
        outcome(own ? flags[i]! : { flagId: 'ff-other', accountId: flags[i]!.accountId }, d, T0 + h * HOUR),
      );
    fc.assert(
      fc.property(fc.array(anOutcome, { maxLength: 8 }), fc.func(fc.integer()), (list, key) => {
        const shuffled = [...list].sort((x, y) => key(x.outcomeId) - key(y.outcomeId));
        expect(labelFlags(flags, shuffled)).toEqual(labelFlags(flags, list));
      }),
    );
  });
});

describe('precision per queue and signal', () => {
  it('counts confirmed over confirmed + cleared, needs-more-info and unreviewed outside the ratio', () => {
    const flags = [
      flag('a', 'identity', ['ip.shared_by_accounts', 'payment.shared_instrument']),
      flag('b', 'identity', ['ip.shared_by_accounts']),
      flag('c', 'identity', ['ip.shared_by_accounts']),
      flag('d', 'contracts', ['contract.self_dealing']),
      flag('e', 'contracts', ['contract.self_dealing']),
    ];
    const outcomes = [
      outcome(flags[0]!, 'CONFIRMED'),
      outcome(flags[1]!, 'CLEARED'),
      outcome(flags[2]!, 'CLEARED'),
      outcome(flags[3]!, 'NEEDS_MORE_INFO'),
      // about an account this replay never flags
      outcome({ flagId: 'ff-gone', accountId: 'z' }, 'CONFIRMED'),
    ];
    const r = reportLabels(labelFlags(flags, outcomes), outcomes);
    expect(r.outcomes).toBe(5);
    expect(r.unmatched).toBe(1);
    expect(r.byQueue.get('identity')).toMatchObject({ flags: 3, confirmed: 1, cleared: 2, precision: 1 / 3 });
    expect(r.byQueue.get('contracts')).toMatchObject({
      flags: 2,
      needsMoreInfo: 1,
      notReviewed: 1,
      precision: null,
    });
    expect(r.bySignal.get('ip.shared_by_accounts')).toMatchObject({ flags: 3, precision: 1 / 3 });
    expect(r.bySignal.get('payment.shared_instrument')).toMatchObject({
      flags: 1,
      confirmed: 1,
      precision: 1,
    });
    expect([...r.byQueue.keys()]).toEqual(['contracts', 'identity']);
    expect(r.overall).toMatchObject({ flags: 5, confirmed: 1, cleared: 2, needsMoreInfo: 1, notReviewed: 1 });
    expect(r.byQueue.get('identity')!.samples.cleared.map((s) => s.accountId)).toEqual(['b', 'c']);
    expect(r.byQueue.get('identity')!.samples.confirmed[0]).toMatchObject({
      accountId: 'a',
      signals: ['ip.shared_by_accounts', 'payment.shared_instrument'],
    });
  });

  it('keeps a few accounts behind each number, not all of them', () => {
    const flags = Array.from({ length: 10 }, (_, i) =>
      flag(`acct-${i}`, 'identity', ['ip.shared_by_accounts']),
    );
    const r = reportLabels(labelFlags(flags, []), []);
    expect(r.overall.notReviewed).toBe(10);
    expect(r.overall.samples.notReviewed).toHaveLength(3);
  });

  it("an account's label for diff is its latest decision", () => {
    const f = flag('a', 'identity', []);
    expect(
      accountLabels([outcome(f, 'CLEARED', T0 + 2 * HOUR), outcome(f, 'CONFIRMED', T0 + HOUR)]).get('a'),
    ).toBe('CLEARED');
  });
});
