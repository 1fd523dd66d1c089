import { describe, expect, it } from 'vitest';
import { sharedInstrument } from '../../../processors/payment/shared-instrument.js';
import { DAY, contextFor, entity, login, paramsFor, payment, snapshot } from '../../support/snapshot.js';

const p = paramsFor(sharedInstrument);
const accounts = (n: number) => Array.from({ length: n }, (_, i) => `acct-${n - i}`);

function evaluate(n: number, capped = false) {
  const e = payment({ eventId: 'card-added', instrumentFingerprint: 'fp-visa-4242', accountId: 'acct-1' });
  const entities = { instrument: entity('instrument', 'fp-visa-4242', accounts(n), capped) };
  return sharedInstrument.evaluate(contextFor(e, snapshot(), { entities }), p);
}

describe('payment.shared_instrument', () => {
  it('ships with 3 accounts on one instrument in 90 days', () => {
    expect(sharedInstrument.weak).toBe(false);
    expect(p.threshold).toBe(3);
    expect(sharedInstrument.needs(p)).toEqual({
      account: [],
      entity: { type: 'instrument', windowMs: 90 * DAY },
    });
  });

  it('fires on one card on 4 accounts, with this event as evidence', () => {
    expect(evaluate(4)).toEqual({
      status: 'fired',
      observed: 4,
      threshold: 3,
      window: '90d',
      summary: 'instrument on 4 accounts in 90d: acct-4, acct-3, acct-2, acct-1',
      evidenceEventIds: ['card-added'],
    });
  });

  it('does not fire on a card only this account uses', () => {
    expect(evaluate(1)).toMatchObject({ status: 'below', observed: 1, threshold: 3, window: '90d' });
  });

  it('fires at exactly the threshold and not one below it', () => {
    expect(evaluate(3)).toMatchObject({ status: 'fired', observed: 3 });
    expect(evaluate(2)).toMatchObject({ status: 'below', observed: 2 });
  });

  it('says when the per-entity account cap was reached', () => {
    const r = evaluate(3, true);
    expect(r.status !== 'skipped' && r.summary).toContain('account cap reached: more were seen');
  });

  it('skips when the store returned no instrument', () => {
    expect(sharedInstrument.evaluate(contextFor(payment(), snapshot()), p)).toEqual({
      status: 'skipped',
      reason: 'no instrument on this event',
    });
  });

  it('is triggered by every payment event that names an instrument in use, not by removal', () => {
    for (const action of ['ADDED', 'VERIFICATION_SUCCEEDED', 'VERIFICATION_FAILED'] as const)
      expect(sharedInstrument.triggeredBy(payment({ action }), 'account')).toBe(true);
    expect(sharedInstrument.triggeredBy(payment({ action: 'REMOVED' }), 'account')).toBe(false);
    expect(sharedInstrument.triggeredBy(login(), 'account')).toBe(false);
  });
});
