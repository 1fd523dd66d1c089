import { describe, expect, it } from 'vitest';
import { anonymizerShare } from '../../../processors/ip/anonymizer-share.js';
import type { EnrichedEvent } from '../../../src/domain/events.js';
import {
  DAY,
  GEO,
  contextFor,
  ipObservation,
  login,
  paramsFor,
  payment,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(anonymizerShare);
const WINDOW = 3 * DAY;
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${n - i}`);

/** `anon` of `all` sessions in the window went through an anonymizer or hosting provider. */
function share(anon: number, all: number, params = p, e: EnrichedEvent = login({ geo: GEO.vpn })) {
  const s = snapshot()
    .count('session', params.window, [], all)
    .count('anonymizedSession', params.window, ids('vpn-login', anon));
  return anonymizerShare.evaluate(contextFor(e, s), params);
}

describe('ip.anonymizer_share', () => {
  it('is weak and ships with 60% of at least 4 sessions in 3 days', () => {
    expect(anonymizerShare.weak).toBe(true);
    expect(p.threshold).toBe(0.6);
    expect(p.minSessions).toBe(4);
    expect(p.window).toBe(WINDOW);
  });

  it('fires when 4 of 5 sessions went through a VPN, with the anonymized sessions as evidence', () => {
    expect(share(4, 5)).toEqual({
      status: 'fired',
      observed: 0.8,
      threshold: 0.6,
      window: '3d',
      summary: '4 of 5 sessions in 3d through an anonymizer or hosting provider',
      evidenceEventIds: ['vpn-login-4', 'vpn-login-3', 'vpn-login-2', 'vpn-login-1'],
    });
  });

  it('does not fire when 2 of 5 sessions did', () => {
    expect(share(2, 5)).toMatchObject({ status: 'below', observed: 0.4, threshold: 0.6, window: '3d' });
  });

  it('fires at exactly the threshold share and not just below it', () => {
    expect(share(3, 5)).toMatchObject({ status: 'fired', observed: 0.6 });
    expect(share(5, 9)).toMatchObject({ status: 'below', observed: 0.556 });
  });

  it('does not judge fewer sessions than the minimum, and says so', () => {
    expect(share(3, 3)).toEqual({ status: 'skipped', reason: '3 session(s) in 3d, fewer than 4' });
    expect(share(4, 4)).toMatchObject({ status: 'fired', observed: 1 });
  });

  it('is judged at successful logins only (IP observations feed its features)', () => {
    expect(anonymizerShare.triggeredBy(login({ outcome: 'SUCCESS' }), 'account')).toBe(true);
    expect(anonymizerShare.triggeredBy(ipObservation(), 'account')).toBe(false);
    expect(anonymizerShare.triggeredBy(login({ outcome: 'FAILURE', geo: GEO.vpn }), 'account')).toBe(false);
    expect(anonymizerShare.triggeredBy(login({ outcome: 'LOGOUT' }), 'account')).toBe(false);
    expect(anonymizerShare.triggeredBy(payment({ geo: GEO.vpn }), 'account')).toBe(false);
  });

  it('is evaluated on an IP observation the same way', () => {
    expect(share(4, 5, p, ipObservation({ geo: GEO.tor })).status).toBe('fired');
  });
});
