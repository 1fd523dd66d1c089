import { describe, expect, it } from 'vitest';
import { addedAfterRiskyLogin } from '../../../processors/payment/added-after-risky-login.js';
import type { Geo } from '../../../src/domain/events.js';
import type { StoredObservation } from '../../../src/features/model.js';
import {
  DAY,
  GEO,
  HOUR,
  MINUTE,
  T0,
  contextFor,
  login,
  observation,
  paramsFor,
  payment,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(addedAfterRiskyLogin);
const WINDOW = 2 * HOUR;
const HISTORY = 90 * DAY;

/** What the engine remembers after a login from a new device and a new country. */
function riskyLogin(eventId: string, at: number, which = ['login.new_device', 'login.new_country']) {
  return which.map((id) => observation(id, { eventId, observedAt: at }));
}

/** The payment side: a card added at T0 after the remembered login observations. */
function cardAdded(remembered: StoredObservation[], recent: StoredObservation[] = []) {
  const e = payment({ action: 'ADDED', eventId: 'card-added', geo: GEO.changchun });
  const s = snapshot()
    .countAfter('methodAdded', WINDOW, ['card-added'])
    .distinct('country', HISTORY, ['US'])
    .distinct('device', HISTORY, ['dev-laptop'])
    .observations(remembered);
  return addedAfterRiskyLogin.evaluate(contextFor(e, s, { recent }), p);
}

/** The login side: a login from Changchun on a new phone; `addedAfter` cards already recorded. */
function loginFromChangchun(
  o: {
    addedAfter?: string[];
    country?: { last?: number };
    device?: { last?: number };
    geo?: Geo;
  } = {},
) {
  const e = login({ geo: o.geo ?? GEO.changchun, deviceId: 'dev-new-phone', eventId: 'login-cn' });
  let s = snapshot()
    .countAfter('methodAdded', WINDOW, o.addedAfter ?? [])
    .distinct('country', HISTORY, ['CN', 'US'])
    .distinct('device', HISTORY, ['dev-new-phone', 'dev-laptop'])
    .lastSeenBefore('device', o.device ?? {});
  if (!o.geo?.anonymizer) s = s.lastSeenBefore('country', o.country ?? {});
  return addedAfterRiskyLogin.evaluate(contextFor(e, s), p);
}

describe('payment.added_after_risky_login', () => {
  it('is strong and ships with a 2 hour window after the login', () => {
    expect(addedAfterRiskyLogin.weak).toBe(false);
    expect(p.strong).toBe(true);
    expect(p.window).toBe(WINDOW);
    expect(p.historyWindow).toBe(HISTORY);
  });

  describe('on the payment event (the login was consumed first)', () => {
    it('fires on a card added 7 minutes after a login from a new device and a new country', () => {
      expect(cardAdded(riskyLogin('login-cn', T0 - 7 * MINUTE))).toEqual({
        status: 'fired',
        observed: 1,
        threshold: 1,
        window: '2h',
        summary: 'method added 2h or less after a login from a new device and a new country',
        evidenceEventIds: ['login-cn', 'card-added'],
      });
    });

    it('sees observations made earlier in the same batch, not yet stored', () => {
      expect(cardAdded([], riskyLogin('login-cn', T0 - MINUTE)).status).toBe('fired');
    });

    it('does not fire after a login with only a new device, or new device and country on different logins', () => {
      expect(cardAdded(riskyLogin('login-a', T0 - MINUTE, ['login.new_device']))).toMatchObject({
        status: 'below',
        observed: 0,
        threshold: 1,
        window: '2h',
      });
      const split = [
        ...riskyLogin('login-a', T0 - 30 * MINUTE, ['login.new_device']),
        ...riskyLogin('login-b', T0 - 10 * MINUTE, ['login.new_country']),
      ];
      expect(cardAdded(split).status).toBe('below');
    });

    it('is exact at the edge of the window, and ignores logins after the card', () => {
      expect(cardAdded(riskyLogin('login-cn', T0 - WINDOW + 1)).status).toBe('fired');
      expect(cardAdded(riskyLogin('login-cn', T0 - WINDOW)).status).toBe('below');
      expect(cardAdded(riskyLogin('login-cn', T0 + MINUTE)).status).toBe('below');
    });
  });

  describe('on the login event (the card was consumed first)', () => {
    it('fires when a card was added after a login from a new device and a new country', () => {
      expect(loginFromChangchun({ addedAfter: ['card-added'] })).toEqual({
        status: 'fired',
        observed: 1,
        threshold: 1,
        window: '2h',
        summary: 'login from a new device and a new country; 1 method(s) added within 2h after',
        evidenceEventIds: ['login-cn', 'card-added'],
      });
    });

    it('observes 1 however many cards were added, as the payment side does', () => {
      expect(loginFromChangchun({ addedAfter: ['card-3', 'card-2', 'card-1'] })).toMatchObject({
        status: 'fired',
        observed: 1,
        evidenceEventIds: ['login-cn', 'card-3', 'card-2', 'card-1'],
      });
    });

    it('does not fire without a card added after, or when the country or device was known', () => {
      expect(loginFromChangchun()).toMatchObject({ status: 'below', observed: 0 });
      expect(loginFromChangchun({ addedAfter: ['card-added'], country: { last: T0 - DAY } })).toMatchObject({
        status: 'below',
        summary: 'login not from a new device and a new country',
      });
      expect(loginFromChangchun({ addedAfter: ['card-added'], device: { last: T0 - DAY } }).status).toBe(
        'below',
      );
    });

    it('skips a login through a VPN: its country is not judged, and says why', () => {
      expect(loginFromChangchun({ addedAfter: ['card-added'], geo: GEO.vpn })).toEqual({
        status: 'skipped',
        reason: 'login location not personal: not judged as a new country',
      });
    });
  });

  it('is triggered by a method added and by a successful login', () => {
    expect(addedAfterRiskyLogin.triggeredBy(payment({ action: 'ADDED' }), 'account')).toBe(true);
    expect(addedAfterRiskyLogin.triggeredBy(login({ outcome: 'SUCCESS' }), 'account')).toBe(true);
    expect(addedAfterRiskyLogin.triggeredBy(payment({ action: 'VERIFICATION_FAILED' }), 'account')).toBe(
      false,
    );
    expect(addedAfterRiskyLogin.triggeredBy(payment({ action: 'REMOVED' }), 'account')).toBe(false);
    expect(addedAfterRiskyLogin.triggeredBy(login({ outcome: 'FAILURE' }), 'account')).toBe(false);
  });
});
