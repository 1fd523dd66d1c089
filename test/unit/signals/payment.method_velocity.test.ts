import { describe, expect, it } from 'vitest';
import { methodVelocity } from '../../../processors/payment/method-velocity.js';
import { DAY, HOUR, contextFor, login, paramsFor, payment, snapshot } from '../../support/snapshot.js';

const p = paramsFor(methodVelocity);
const added = (n: number) => Array.from({ length: n }, (_, i) => `card-added-${n - i}`);

function evaluate(n: number, params = p) {
  const e = payment({ action: 'ADDED', eventId: added(n)[0] ?? 'card-added-0' });
  return methodVelocity.evaluate(
    contextFor(e, snapshot().count('methodAdded', params.window, added(n))),
    params,
  );
}

describe('payment.method_velocity', () => {
  it('ships with 3 methods in 24 hours', () => {
    expect(methodVelocity.weak).toBe(false);
    expect(p.threshold).toBe(3);
    expect(p.window).toBe(DAY);
  });

  it('fires on 5 cards added in a day, with each addition as evidence', () => {
    expect(evaluate(5)).toEqual({
      status: 'fired',
      observed: 5,
      threshold: 3,
      window: '1d',
      summary: '5 payment methods added in 1d',
      evidenceEventIds: added(5),
    });
  });

  it('does not fire on one card', () => {
    expect(evaluate(1)).toMatchObject({ status: 'below', observed: 1, threshold: 3, window: '1d' });
  });

  it('fires at exactly the threshold and not one below it', () => {
    expect(evaluate(3)).toMatchObject({ status: 'fired', observed: 3 });
    expect(evaluate(2)).toMatchObject({ status: 'below', observed: 2 });
  });

  it('reads its window from config', () => {
    expect(evaluate(2, { ...p, threshold: 2, window: 6 * HOUR })).toMatchObject({
      status: 'fired',
      window: '6h',
    });
  });

  it('is triggered by a method being added, nothing else', () => {
    expect(methodVelocity.triggeredBy(payment({ action: 'ADDED' }), 'account')).toBe(true);
    for (const action of ['REMOVED', 'VERIFICATION_SUCCEEDED', 'VERIFICATION_FAILED'] as const)
      expect(methodVelocity.triggeredBy(payment({ action }), 'account')).toBe(false);
    expect(methodVelocity.triggeredBy(login(), 'account')).toBe(false);
  });
});
