// The signals report's counting (src/tools/review-report.ts), in memory.
import { describe, expect, it } from 'vitest';
import type { ReviewRecord } from '../../src/features/state-backend.js';
import { periodOf, reviewReport } from '../../src/tools/review-report.js';

const at = (iso: string) => Date.parse(iso);
const rec = (
  outcomeId: string,
  flagId: string,
  queue: string,
  outcome: string,
  when: string,
  signals: string[],
) => ({ outcomeId, flagId, queue, outcome, decidedAt: at(when), signals }) satisfies ReviewRecord;

describe('the signals report', () => {
  it('names periods by UTC day, the Monday of the week, and month', () => {
    // 2026-12-01 is a Tuesday
    expect(periodOf(at('2026-12-01T23:59:00Z'), 'day')).toBe('2026-12-01');
    expect(periodOf(at('2026-12-01T10:00:00Z'), 'week')).toBe('2026-11-30');
    expect(periodOf(at('2026-11-30T00:00:00Z'), 'week')).toBe('2026-11-30');
    expect(periodOf(at('2026-12-06T23:00:00Z'), 'week')).toBe('2026-11-30');
    expect(periodOf(at('2026-12-07T00:00:00Z'), 'week')).toBe('2026-12-07');
    expect(periodOf(at('2026-12-31T23:00:00Z'), 'month')).toBe('2026-12');
  });

  it('counts the flags reviewed as the denominator, more info outside precision', () => {
    const records = [
      rec('o1', 'f1', 'identity', 'NEEDS_MORE_INFO', '2026-12-01T08:00:00Z', ['ip.shared_by_accounts']),
      rec('o2', 'f1', 'identity', 'CONFIRMED', '2026-12-01T09:00:00Z', ['ip.shared_by_accounts']),
      rec('o3', 'f2', 'identity', 'CLEARED', '2026-12-02T09:00:00Z', [
        'ip.shared_by_accounts',
        'payment.shared_instrument',
      ]),
      rec('o4', 'f3', 'identity', 'CLEARED', '2026-12-08T09:00:00Z', ['payment.shared_instrument']),
      rec('o5', 'f4', 'contracts', 'NEEDS_MORE_INFO', '2026-12-08T10:00:00Z', ['contract.self_dealing']),
    ];
    const r = reviewReport(records, { since: 0, until: at('2027-01-01T00:00:00Z'), period: 'week' });
    expect(r.records).toBe(5);
    expect(r.byPeriodQueue).toEqual([
      {
        period: '2026-11-30',
        queue: 'identity',
        reviewedFlags: 2,
        confirmed: 1,
        cleared: 1,
        needsMoreInfo: 1,
        precision: 0.5,
      },
      {
        period: '2026-12-07',
        queue: 'contracts',
        reviewedFlags: 1,
        confirmed: 0,
        cleared: 0,
        needsMoreInfo: 1,
        precision: null,
      },
      {
        period: '2026-12-07',
        queue: 'identity',
        reviewedFlags: 1,
        confirmed: 0,
        cleared: 1,
        needsMoreInfo: 0,
        precision: 0,
      },
    ]);
    expect(r.bySignal.map((s) => [s.signal, s.reviewedFlags, s.precision])).toEqual([
      ['contract.self_dealing', 1, null],
      ['ip.shared_by_accounts', 2, 0.5],
      ['payment.shared_instrument', 2, 0],
    ]);
  });
});
