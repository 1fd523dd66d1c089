import { describe, expect, it } from 'vitest';
import { concurrentDistantSessions } from '../../../processors/login/concurrent-distant-sessions.js';
import { planEvent } from '../../../processors/registry.js';
import type { Geo } from '../../../src/domain/events.js';
import {
  GEO,
  HOUR,
  MINUTE,
  T0,
  contextFor,
  ipObservation,
  login,
  paramsFor,
  sameNetwork,
  sessionOf,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(concurrentDistantSessions);
const WINDOW = 2 * HOUR;

/** A login at `here` while sessions started at `elsewhere` are open; the store lists this one too. */
function loginWhile(here: Geo, elsewhere: Geo[], params = p) {
  const others = elsewhere.map((geo, i) =>
    login({ geo, at: T0 - (30 + i) * MINUTE, eventId: `login-other-${i + 1}`, sessionId: `sess-${i + 1}` }),
  );
  const e = login({ geo: here, eventId: 'login-now', sessionId: 'sess-now' });
  const open = [e, ...others].filter((l) => !l.geo?.anonymizer && !l.geo?.hosting).map(sessionOf);
  return concurrentDistantSessions.evaluate(contextFor(e, snapshot().sessions(params.window, open)), params);
}

describe('login.concurrent_distant_sessions', () => {
  it('ships with one far session within 2 hours at 500 km or more', () => {
    expect(p.threshold).toBe(1);
    expect(p.window).toBe(WINDOW);
    expect(p.minDistanceKm).toBe(500);
  });

  it('fires when a session in Milton is open while the account logs in from Changchun', () => {
    const r = loginWhile(GEO.changchun, [GEO.milton]);
    expect(r).toMatchObject({
      status: 'fired',
      observed: 1,
      threshold: 1,
      window: '2h',
      evidenceEventIds: ['login-other-1', 'login-now'],
    });
    expect(r.status !== 'skipped' && r.summary).toMatch(/^1 other open session\(s\) \d+ km away$/);
  });

  it('does not count the session of this login, nor a session in the same city', () => {
    expect(loginWhile(GEO.milton, [])).toMatchObject({ status: 'below', observed: 0 });
    expect(loginWhile(GEO.milton, [sameNetwork(GEO.milton, 9)])).toMatchObject({
      status: 'below',
      observed: 0,
      summary: 'no far-away open session',
    });
  });

  it('fires at exactly the threshold and not one below it', () => {
    const two = { ...p, threshold: 2 };
    expect(loginWhile(GEO.changchun, [GEO.milton], two)).toMatchObject({ status: 'below', observed: 1 });
    expect(loginWhile(GEO.changchun, [GEO.milton, GEO.linkoping], two)).toMatchObject({
      status: 'fired',
      observed: 2,
      threshold: 2,
    });
  });

  it.each([
    ['a VPN exit', GEO.vpn, '1.2.0.1', 'vpn'],
    ['a hosting provider', GEO.hosting, '71.160.223.1', 'hosting'],
  ])('skips a login through %s, saying its location says nothing about the person', (_, geo, ip, kind) => {
    const r = loginWhile(geo, [GEO.milton]);
    expect(r).toEqual({
      status: 'skipped',
      reason: `IP ${ip} is an anonymizer or hosting provider (${kind}): its location says nothing about the person`,
    });
  });

  it('never counts a VPN session as a distant one: the login processor opens no session for it', () => {
    const ops = planEvent(login({ geo: GEO.vpn, sessionId: 'sess-vpn' })).subjects[0]!.ops;
    expect(ops.some((op) => op.op === 'sessionStart')).toBe(false);
    expect(loginWhile(GEO.changchun, [GEO.vpn])).toMatchObject({ status: 'below', observed: 0 });
  });

  it('is triggered by successful logins with a session', () => {
    expect(concurrentDistantSessions.triggeredBy(login({ sessionId: 's' }), 'account')).toBe(true);
    expect(concurrentDistantSessions.triggeredBy(login({ sessionId: null }), 'account')).toBe(false);
    expect(concurrentDistantSessions.triggeredBy(login({ outcome: 'FAILURE' }), 'account')).toBe(false);
    expect(concurrentDistantSessions.triggeredBy(login({ outcome: 'LOGOUT' }), 'account')).toBe(false);
    expect(concurrentDistantSessions.triggeredBy(ipObservation({ sessionId: 's' }), 'account')).toBe(false);
  });
});
