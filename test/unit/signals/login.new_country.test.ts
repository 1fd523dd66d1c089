import { describe, expect, it } from 'vitest';
import { newCountry, skipReason } from '../../../processors/login/new-country.js';
import {
  DAY,
  GEO,
  HOUR,
  T0,
  contextFor,
  ipObservation,
  login,
  paramsFor,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(newCountry);
const WINDOW = 90 * DAY;

/** A login from Changchun for an account whose countries in the window are `countries`. */
function fromChangchun(countries: string[], seen: { last?: number; first?: number } = {}) {
  const e = login({ geo: GEO.changchun, eventId: 'login-cn' });
  const s = snapshot().distinct('country', WINDOW, countries).lastSeenBefore('country', seen);
  return newCountry.evaluate(contextFor(e, s), p);
}

describe('login.new_country', () => {
  it('is weak and ships with a 90 day history window', () => {
    expect(newCountry.weak).toBe(true);
    expect(p.window).toBe(WINDOW);
  });

  it('fires on the first login from a country unseen in the window, with this login as evidence', () => {
    expect(fromChangchun(['CN', 'US'])).toEqual({
      status: 'fired',
      observed: 1,
      threshold: 1,
      window: '90d',
      summary: 'first login from CN (Changchun) in 90d; seen before: US',
      evidenceEventIds: ['login-cn'],
    });
  });

  it('does not fire for a country seen two days before', () => {
    expect(fromChangchun(['CN', 'US'], { last: T0 - 2 * DAY, first: T0 - 40 * DAY })).toMatchObject({
      status: 'below',
      observed: 0,
      threshold: 1,
      window: '90d',
    });
  });

  it('is exact at the edge of the history window', () => {
    // last seen exactly 90 days before: outside (asOf - window, asOf], so new again
    expect(fromChangchun(['CN', 'US'], { last: T0 - WINDOW, first: T0 - 200 * DAY })).toMatchObject({
      status: 'fired',
    });
    expect(fromChangchun(['CN', 'US'], { last: T0 - WINDOW + 1, first: T0 - 200 * DAY })).toMatchObject({
      status: 'below',
    });
  });

  it('does not judge the first login of an account: no other country to compare with', () => {
    const r = fromChangchun(['CN']);
    expect(r.status).toBe('skipped');
    expect(r.status === 'skipped' && r.reason).toBe('no other country in the history window to compare with');
  });

  it.each([
    ['a VPN exit', GEO.vpn, /1\.2\.0\.1 is listed as vpn: /],
    ['a Tor exit', GEO.tor, /65\.0\.0\.1 is listed as tor: /],
    ['a hosting provider', GEO.hosting, /71\.160\.223\.1 is listed as hosting: /],
  ])('skips a login through %s, saying its location says nothing about the person', (_, geo, why) => {
    // the login processor records no country for such a login, so there is no novelty to read
    const e = login({ geo });
    const s = snapshot().distinct('country', WINDOW, ['US']);
    const r = newCountry.evaluate(contextFor(e, s), p);
    expect(r.status).toBe('skipped');
    if (r.status !== 'skipped') return;
    expect(r.reason).toMatch(why);
    expect(r.reason).toContain('its location says nothing about the person');
  });

  it('skips when the IP has no known location or country', () => {
    const none = newCountry.evaluate(contextFor(login({ geo: null }), snapshot()), p);
    expect(none).toEqual({ status: 'skipped', reason: 'no location known for this IP' });
    const { country: _c, city: _t, latitude: _la, longitude: _lo, ...unlocated } = GEO.milton;
    const r = newCountry.evaluate(contextFor(login({ geo: unlocated }), snapshot()), p);
    expect(r).toEqual({ status: 'skipped', reason: 'no country known for 216.160.83.56' });
  });

  it('is triggered by successful logins only', () => {
    expect(newCountry.triggeredBy(login({ outcome: 'SUCCESS' }), 'account')).toBe(true);
    expect(newCountry.triggeredBy(login({ outcome: 'FAILURE', geo: GEO.changchun }), 'account')).toBe(false);
    expect(newCountry.triggeredBy(login({ outcome: 'LOGOUT' }), 'account')).toBe(false);
    expect(newCountry.triggeredBy(ipObservation({ geo: GEO.changchun }), 'account')).toBe(false);
  });

  it('treats a country recorded only by a later event as new (families are consumed independently)', () => {
    expect(fromChangchun(['CN', 'US'], { last: T0 + HOUR, first: T0 + HOUR })).toMatchObject({
      status: 'fired',
    });
  });
});

describe('the reason a location is not judged', () => {
  it('names every type the databases list for the IP, and what a stored login still knows', () => {
    expect(
      skipReason({
        ip: '81.2.69.142',
        anonymizerKinds: ['vpn', 'tor', 'public proxy', 'hosting'],
        hosting: true,
      }),
    ).toBe(
      'IP 81.2.69.142 is listed as vpn, tor, public proxy, hosting: its location says nothing about the person, so it is not judged',
    );
    expect(skipReason({ ip: '81.2.69.142', anonymizerKinds: [], anonymizer: true, hosting: true })).toBe(
      'IP 81.2.69.142 is listed as an anonymizer, hosting: its location says nothing about the person, so it is not judged',
    );
  });
});
