import { describe, expect, it } from 'vitest';
import { firstPaymentThenDispute } from '../../../processors/contract/first-payment-then-dispute.js';
import { DAY, T0, contextFor, contract, login, paramsFor, snapshot } from '../../support/snapshot.js';

const p = paramsFor(firstPaymentThenDispute);
const WINDOW = 30 * DAY;

function evaluate(o: { age?: number | null; paid?: string[]; nonDelivery?: string[] } = {}) {
  const e = contract({
    action: 'DISPUTED',
    disputeReason: 'NON_DELIVERY',
    accountId: 'client-1',
    freelancerAccountId: 'agency-new',
    eventId: 'disputed-1',
  });
  let s = snapshot('agency-new')
    .count('milestonePaid', WINDOW, o.paid ?? ['milestone-paid-1'])
    .count('nonDeliveryDispute', WINDOW, o.nonDelivery ?? ['disputed-1']);
  const age = o.age === undefined ? 6 * DAY : o.age;
  if (age !== null) s = s.context({ createdAt: T0 - age });
  return firstPaymentThenDispute.evaluate(contextFor(e, s, { role: 'freelancer' }), p);
}

describe('contract.first_payment_then_dispute', () => {
  it('is strong, sufficient alone, and ships for accounts up to 30 days old', () => {
    expect(firstPaymentThenDispute.weak).toBe(false);
    expect(p.strong).toBe(true);
    expect(p.sufficientAlone).toBe(true);
    expect(p.maxAccountAge).toBe(30 * DAY);
    expect(p.window).toBe(WINDOW);
  });

  it('fires when a 6 day old agency took a first milestone and is disputed for non-delivery', () => {
    expect(evaluate()).toEqual({
      status: 'fired',
      observed: 1,
      threshold: 1,
      window: '30d',
      summary: 'account 6d old: 1 milestone payment(s) received, 1 non-delivery dispute(s)',
      evidenceEventIds: ['milestone-paid-1', 'disputed-1'],
    });
  });

  it('does not fire when no payment was received', () => {
    expect(evaluate({ paid: [] })).toMatchObject({
      status: 'below',
      observed: 0,
      threshold: 1,
      window: '30d',
    });
  });

  it('fires on the first dispute (threshold 1) and counts further ones', () => {
    expect(evaluate({ nonDelivery: ['disputed-1', 'disputed-0'] })).toMatchObject({
      status: 'fired',
      observed: 2,
    });
    expect(evaluate({ nonDelivery: [] })).toMatchObject({ status: 'below', observed: 0 });
  });

  it('does not judge established accounts, and is exact at the age limit', () => {
    expect(evaluate({ age: 2 * 365 * DAY })).toEqual({
      status: 'skipped',
      reason: 'account is 730d old, older than 30d',
    });
    expect(evaluate({ age: 30 * DAY }).status).toBe('fired');
    expect(evaluate({ age: 30 * DAY + 1 }).status).toBe('skipped');
  });

  it('skips when the account creation time is unknown', () => {
    expect(evaluate({ age: null })).toEqual({ status: 'skipped', reason: 'account creation time unknown' });
  });

  it('is triggered by a non-delivery dispute, for the freelancer only', () => {
    const nonDelivery = contract({ action: 'DISPUTED', disputeReason: 'NON_DELIVERY' });
    expect(firstPaymentThenDispute.triggeredBy(nonDelivery, 'freelancer')).toBe(true);
    expect(firstPaymentThenDispute.triggeredBy(nonDelivery, 'client')).toBe(false);
    for (const reason of ['QUALITY', 'SCOPE', 'OTHER'] as const)
      expect(
        firstPaymentThenDispute.triggeredBy(
          contract({ action: 'DISPUTED', disputeReason: reason }),
          'freelancer',
        ),
      ).toBe(false);
    expect(
      firstPaymentThenDispute.triggeredBy(
        contract({ action: 'REFUNDED', disputeReason: 'NON_DELIVERY' }),
        'freelancer',
      ),
    ).toBe(false);
    expect(firstPaymentThenDispute.triggeredBy(login(), 'account')).toBe(false);
  });
});
