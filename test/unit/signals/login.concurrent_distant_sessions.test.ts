import { describe, expect, it } from 'vitest';
import { concurrentDistantSessions } from '../../../processors/login/concurrent-distant-sessions.js';
import { planEvent } from '../../../processors/registry.js';
import type { Geo } from '../../../src/domain/events.js';
import {
  GEO,
  DAY,
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
const SESSION_WINDOW = 2 * HOUR;

/**
 * A login at `here` while sessions started at `elsewhere` are open; the store lists this one too,
 * and the episodes recorded before (`earlier`, newest first; `ongoing`: one within the session window).
 */
function loginWhile(
  here: Geo,
  elsewhere: Geo[],
  params = p,
  episodes: { earlier?: string[]; ongoing?: boolean } = {},
) {
  const others = elsewhere.map((geo, i) =>
    login({ geo, at: T0 - (30 + i) * MINUTE, eventId: `login-other-${i + 1}`, sessionId: `sess-${i + 1}` }),
  );
  const e = login({ geo: here, eventId: 'login-now', sessionId: 'sess-now' });
  const open = [e, ...others].filter((l) => !l.geo?.anonymizer && !l.geo?.hosting).map(sessionOf);
  const earlier = episodes.earlier ?? [];
  const latest = episodes.ongoing ? earlier.slice(0, 1) : [];
  const view = snapshot()
    .sessions(params.sessionWindow, open)
    .count('sharingEpisode', params.window, earlier.slice(0, 20), earlier.length, 20)
    .count('sharingEpisode', params.sessionWindow, latest, latest.length, 1);
  return concurrentDistantSessions.evaluate(contextFor(e, view), params);
}

describe('login.concurrent_distant_sessions', () => {
  it('ships counting three episodes in 30 days, sessions open 2 hours, 500 km or more apart', () => {
    expect(p.threshold).toBe(3);
    expect(p.window).toBe(30 * DAY);
    expect(p.sessionWindow).toBe(SESSION_WINDOW);
    expect(p.minDistanceKm).toBe(500);
    expect(p.sufficientAlone).toBe(true);
    expect(p.queue).toBe('identity');
  });

  it('a first overlap (Milton open, login from Changchun) is one episode: recorded, below the threshold', () => {
    const r = loginWhile(GEO.changchun, [GEO.milton]);
    expect(r).toMatchObject({
      status: 'below',
      observed: 1,
      threshold: 3,
      window: '30d',
      recordAs: 'sharingEpisode',
    });
    expect(r.status !== 'skipped' && r.summary).toMatch(
      /^1 episode\(s\) in 30d of sessions open at once far apart; now 1 other open session\(s\) \d+ km away$/,
    );
  });

  it('fires at the third episode, with every episode and both sessions as evidence', () => {
    const r = loginWhile(GEO.changchun, [GEO.milton], p, { earlier: ['login-day2', 'login-day1'] });
    expect(r).toMatchObject({
      status: 'fired',
      observed: 3,
      threshold: 3,
      recordAs: 'sharingEpisode',
      evidenceEventIds: ['login-day2', 'login-day1', 'login-other-1', 'login-now'],
    });
  });

  it('a second login within the same overlap is the same episode: not counted, not recorded again', () => {
    const r = loginWhile(GEO.changchun, [GEO.milton], p, {
      earlier: ['login-day2', 'login-day1'],
      ongoing: true,
    });
    expect(r).toMatchObject({ status: 'below', observed: 2 });
    expect(r).not.toHaveProperty('recordAs');
  });

  it('does not count the session of this login, nor a session in the same city', () => {
    expect(loginWhile(GEO.milton, [])).toMatchObject({ status: 'below', observed: 0 });
    const r = loginWhile(GEO.milton, [sameNetwork(GEO.milton, 9)], p, { earlier: ['login-day1'] });
    expect(r).toEqual({
      status: 'below',
      observed: 0,
      threshold: 3,
      window: '30d',
      summary: 'no far-away open session now (1 earlier episode(s) in 30d)',
    });
  });

  it('fires at exactly the threshold and not one below it', () => {
    const two = { ...p, threshold: 2 };
    expect(loginWhile(GEO.changchun, [GEO.milton], two)).toMatchObject({ status: 'below', observed: 1 });
    expect(loginWhile(GEO.changchun, [GEO.milton], two, { earlier: ['login-day1'] })).toMatchObject({
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
      reason: `IP ${ip} is listed as ${kind}: its location says nothing about the person, so it is not judged`,
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
