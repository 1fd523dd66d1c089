import { describe, expect, it } from 'vitest';
import { failedVerifications } from '../../../processors/payment/failed-verifications.js';
import { DAY, contextFor, login, paramsFor, payment, snapshot } from '../../support/snapshot.js';

const p = paramsFor(failedVerifications);
const failed = (n: number) => Array.from({ length: n }, (_, i) => `verify-failed-${n - i}`);

function evaluate(n: number) {
  const e = payment({ action: 'VERIFICATION_FAILED', eventId: failed(n)[0] ?? 'verify-failed-0' });
  const s = snapshot().count('verificationFailed', p.window, failed(n));
  return failedVerifications.evaluate(contextFor(e, s), p);
}

describe('payment.failed_verifications', () => {
  it('ships with 3 failures in 24 hours', () => {
    expect(failedVerifications.weak).toBe(false);
    expect(p.threshold).toBe(3);
    expect(p.window).toBe(DAY);
  });

  it('fires on 6 failed verifications (card testing), with each failure as evidence', () => {
    expect(evaluate(6)).toEqual({
      status: 'fired',
      observed: 6,
      threshold: 3,
      window: '1d',
      summary: '6 failed payment-method verifications in 1d',
      evidenceEventIds: failed(6),
    });
  });

  it('does not fire on one mistyped card', () => {
    expect(evaluate(1)).toMatchObject({ status: 'below', observed: 1, threshold: 3, window: '1d' });
  });

  it('fires at exactly the threshold and not one below it', () => {
    expect(evaluate(3)).toMatchObject({ status: 'fired', observed: 3 });
    expect(evaluate(2)).toMatchObject({ status: 'below', observed: 2 });
  });

  it('is triggered by failed verifications only', () => {
    expect(failedVerifications.triggeredBy(payment({ action: 'VERIFICATION_FAILED' }), 'account')).toBe(true);
    for (const action of ['ADDED', 'REMOVED', 'VERIFICATION_SUCCEEDED'] as const)
      expect(failedVerifications.triggeredBy(payment({ action }), 'account')).toBe(false);
    expect(failedVerifications.triggeredBy(login({ outcome: 'FAILURE' }), 'account')).toBe(false);
  });
});
