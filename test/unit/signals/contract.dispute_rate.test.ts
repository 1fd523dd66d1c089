import { describe, expect, it } from 'vitest';
import { disputeRate } from '../../../processors/contract/dispute-rate.js';
import { DAY, contextFor, contract, paramsFor, payment, snapshot } from '../../support/snapshot.js';

const p = paramsFor(disputeRate);
const disputes = (n: number) => Array.from({ length: n }, (_, i) => `disputed-${n - i}`);

function evaluate(n: number) {
  const e = contract({
    action: 'DISPUTED',
    disputeReason: 'QUALITY',
    accountId: 'client-1',
    eventId: 'disputed-x',
  });
  const s = snapshot('free-1').count('dispute', p.window, disputes(n));
  return disputeRate.evaluate(contextFor(e, s, { role: 'freelancer' }), p);
}

describe('contract.dispute_rate', () => {
  it('ships with 3 disputes or refunds in 30 days', () => {
    expect(disputeRate.weak).toBe(false);
    expect(p.threshold).toBe(3);
    expect(p.window).toBe(30 * DAY);
  });

  it('fires on 4 disputes against the freelancer, with each as evidence', () => {
    expect(evaluate(4)).toEqual({
      status: 'fired',
      observed: 4,
      threshold: 3,
      window: '30d',
      summary: '4 disputes or refunds against the freelancer in 30d',
      evidenceEventIds: disputes(4),
    });
  });

  it('does not fire on one dispute', () => {
    expect(evaluate(1)).toMatchObject({ status: 'below', observed: 1, threshold: 3, window: '30d' });
  });

  it('fires at exactly the threshold and not one below it', () => {
    expect(evaluate(3)).toMatchObject({ status: 'fired', observed: 3 });
    expect(evaluate(2)).toMatchObject({ status: 'below', observed: 2 });
  });

  it('is triggered by disputes and refunds, and only for the freelancer', () => {
    for (const action of ['DISPUTED', 'REFUNDED'] as const) {
      expect(disputeRate.triggeredBy(contract({ action }), 'freelancer')).toBe(true);
      expect(disputeRate.triggeredBy(contract({ action }), 'client')).toBe(false);
    }
    for (const action of ['STARTED', 'MILESTONE_PAID', 'ENDED'] as const)
      expect(disputeRate.triggeredBy(contract({ action }), 'freelancer')).toBe(false);
    expect(disputeRate.triggeredBy(payment(), 'account')).toBe(false);
  });
});
