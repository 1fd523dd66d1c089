import { describe, expect, it } from 'vitest';
import { failedBurst } from '../../../processors/login/failed-burst.js';
import { MissingFeatureError } from '../../../src/features/view.js';
import {
  GEO,
  MINUTE,
  contextFor,
  ipObservation,
  login,
  paramsFor,
  payment,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(failedBurst);
const WINDOW = 15 * MINUTE;
/** Failed attempts from Changchun, newest first, as the store returns them. */
const failures = (n: number) => Array.from({ length: n }, (_, i) => `fail-${String(n - i).padStart(2, '0')}`);

function evaluate(n: number, params = p) {
  const e = login({ outcome: 'FAILURE', geo: GEO.changchun, eventId: failures(n)[0] ?? 'fail-00' });
  const s = snapshot().count('loginFailed', params.window, failures(n));
  return failedBurst.evaluate(contextFor(e, s), params);
}

describe('login.failed_burst', () => {
  it('ships with threshold 10 in 15 minutes', () => {
    expect(p.threshold).toBe(10);
    expect(p.window).toBe(WINDOW);
    expect(failedBurst.weak).toBe(false);
  });

  it('fires on 12 failed logins in 15 minutes, with every failure as evidence', () => {
    expect(evaluate(12)).toEqual({
      status: 'fired',
      observed: 12,
      threshold: 10,
      window: '15m',
      summary: '12 failed logins in 15m',
      evidenceEventIds: failures(12),
    });
  });

  it('does not fire on 3 failed logins', () => {
    expect(evaluate(3)).toMatchObject({ status: 'below', observed: 3, threshold: 10, window: '15m' });
  });

  it('fires at exactly the threshold and not one below it', () => {
    expect(evaluate(10)).toMatchObject({ status: 'fired', observed: 10, threshold: 10 });
    expect(evaluate(9)).toMatchObject({ status: 'below', observed: 9, threshold: 10 });
  });

  it('reads the configured window and threshold, not built-in numbers', () => {
    const tuned = paramsFor(failedBurst, { threshold: 3, window: 5 * MINUTE });
    expect(evaluate(3, tuned)).toMatchObject({ status: 'fired', threshold: 3, window: '5m' });
    // the 15m count was not asked for: the signal must not read it
    const e = login({ outcome: 'FAILURE' });
    const s = snapshot().count('loginFailed', WINDOW, failures(12));
    expect(() => failedBurst.evaluate(contextFor(e, s), tuned)).toThrow(MissingFeatureError);
  });

  it('asks the store for failed logins over its window', () => {
    expect(failedBurst.needs(p)).toEqual({
      account: [{ q: 'count', kind: 'loginFailed', from: -WINDOW, to: 0, maxIds: 50 }],
    });
  });

  it('is triggered by failed logins only', () => {
    expect(failedBurst.triggeredBy(login({ outcome: 'FAILURE' }), 'account')).toBe(true);
    expect(failedBurst.triggeredBy(login({ outcome: 'SUCCESS' }), 'account')).toBe(false);
    expect(failedBurst.triggeredBy(login({ outcome: 'LOGOUT' }), 'account')).toBe(false);
    expect(failedBurst.triggeredBy(ipObservation(), 'account')).toBe(false);
    expect(failedBurst.triggeredBy(payment({ action: 'VERIFICATION_FAILED' }), 'account')).toBe(false);
  });

  it('counts failures through an anonymizer too: guessing passwords over a VPN is still guessing', () => {
    const e = login({ outcome: 'FAILURE', geo: GEO.vpn });
    const s = snapshot().count('loginFailed', WINDOW, failures(11));
    expect(failedBurst.triggeredBy(e, 'account')).toBe(true);
    expect(failedBurst.evaluate(contextFor(e, s), p)).toMatchObject({ status: 'fired', observed: 11 });
  });
});
