import { describe, expect, it } from 'vitest';
import { impossibleTravel } from '../../../processors/login/impossible-travel.js';
import type { Geo } from '../../../src/domain/events.js';
import type { Evaluation } from '../../../src/domain/signal.js';
import {
  DAY,
  GEO,
  MINUTE,
  T0,
  contextFor,
  ipObservation,
  login,
  loginRecordOf,
  paramsFor,
  sameNetwork,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(impossibleTravel);

/** A login at `from` at T0, then one at `to` `after` ms later; evaluated for the second. */
function travel(from: Geo | null, to: Geo | null, after: number, params = p): Evaluation {
  const first = login({ geo: from, at: T0, eventId: 'login-1' });
  const second = login({ geo: to, at: T0 + after, eventId: 'login-2' });
  const s = snapshot('acct-1', T0 + after).logins(loginRecordOf(second), loginRecordOf(first));
  return impossibleTravel.evaluate(contextFor(second, s), params);
}

const speedOf = (r: Evaluation) => (r.status === 'skipped' ? NaN : r.observed);

describe('login.impossible_travel', () => {
  it('is strong and ships with 1000 km/h over at least 300 km', () => {
    expect(impossibleTravel.weak).toBe(false);
    expect(p.strong).toBe(true);
    expect(p.threshold).toBe(1000);
    expect(p.minDistanceKm).toBe(300);
  });

  it('fires on Milton to Changchun in 58 minutes, with both logins as evidence', () => {
    const r = travel(GEO.milton, GEO.changchun, 58 * MINUTE);
    expect(r).toMatchObject({
      status: 'fired',
      threshold: 1000,
      window: 'consecutive logins',
      evidenceEventIds: ['login-1', 'login-2'],
    });
    // about 8,400 km great-circle, less 22 + 100 km of accuracy radius, in 58 minutes
    expect(speedOf(r)).toBeGreaterThan(8000);
    expect(speedOf(r)).toBeLessThan(9000);
    expect(r.status !== 'skipped' && r.summary).toMatch(/^Milton, US to Changchun, CN: \d+ km in 58 min/);
  });

  it('does not fire for the same trip over two days', () => {
    const r = travel(GEO.milton, GEO.changchun, 2 * DAY);
    expect(r).toMatchObject({ status: 'below', threshold: 1000, window: 'consecutive logins' });
    expect(speedOf(r)).toBeLessThan(1000);
  });

  it('uses ">" on speed: a speed exactly at the threshold does not fire, one km/h more does', () => {
    const speed = speedOf(travel(GEO.linkoping, GEO.melbourne, 20 * 3_600_000));
    expect(speed).toBeGreaterThan(0);
    expect(travel(GEO.linkoping, GEO.melbourne, 20 * 3_600_000, { ...p, threshold: speed })).toMatchObject({
      status: 'below',
      observed: speed,
      threshold: speed,
    });
    expect(
      travel(GEO.linkoping, GEO.melbourne, 20 * 3_600_000, { ...p, threshold: speed - 1 }),
    ).toMatchObject({ status: 'fired', observed: speed });
  });

  it('does not fire on hops shorter than the minimum distance, however fast', () => {
    // a new address in the same city a minute later: within the error of geolocation
    const r = travel(GEO.milton, sameNetwork(GEO.milton, 77), MINUTE);
    expect(r).toMatchObject({ status: 'below', observed: 0 });
  });

  it('treats two logins in the same millisecond as a minute apart, not infinitely fast', () => {
    const r = travel(GEO.milton, GEO.changchun, 0);
    expect(r.status).toBe('fired');
    expect(Number.isFinite(speedOf(r))).toBe(true);
  });

  it.each([
    ['this login is through a VPN', GEO.milton, GEO.vpn, /^this login: IP 1\.2\.0\.1 is listed as vpn: /],
    [
      'the previous login was through Tor',
      GEO.tor,
      GEO.changchun,
      /^previous login: IP 65\.0\.0\.1 is listed as an anonymizer: /,
    ],
    [
      'this login is from a hosting provider',
      GEO.milton,
      GEO.hosting,
      /^this login: IP 71\.160\.223\.1 .*hosting/,
    ],
  ])('skips when %s, saying its location says nothing about the person', (_, from, to, why) => {
    const r = travel(from, to, 10 * MINUTE);
    expect(r.status).toBe('skipped');
    if (r.status !== 'skipped') return;
    expect(r.reason).toMatch(why);
    expect(r.reason).toContain('its location says nothing about the person');
    expect(r.reason).not.toContain('()');
  });

  it('skips when there is nothing to compare with or no location', () => {
    const only = login({ geo: GEO.changchun });
    const first = impossibleTravel.evaluate(contextFor(only, snapshot().logins(loginRecordOf(only))), p);
    expect(first).toEqual({ status: 'skipped', reason: 'no earlier login to compare with' });
    expect(travel(null, GEO.changchun, 10 * MINUTE)).toEqual({
      status: 'skipped',
      reason: 'previous login: no location known for 192.0.2.10',
    });
  });

  it('skips an out-of-order login: a later one is already the latest', () => {
    const late = login({ geo: GEO.changchun, at: T0 - 10 * MINUTE, eventId: 'login-late' });
    const later = loginRecordOf(login({ geo: GEO.milton, at: T0, eventId: 'login-newer' }));
    const r = impossibleTravel.evaluate(contextFor(late, snapshot().logins(later)), p);
    expect(r).toMatchObject({ status: 'skipped', reason: expect.stringContaining('out of order') });
  });

  it('is triggered by successful logins only', () => {
    expect(impossibleTravel.triggeredBy(login({ outcome: 'SUCCESS' }), 'account')).toBe(true);
    expect(impossibleTravel.triggeredBy(login({ outcome: 'FAILURE' }), 'account')).toBe(false);
    expect(impossibleTravel.triggeredBy(login({ outcome: 'LOGOUT' }), 'account')).toBe(false);
    expect(impossibleTravel.triggeredBy(ipObservation(), 'account')).toBe(false);
  });
});
