import { describe, expect, it } from 'vitest';
import { newDevice } from '../../../processors/login/new-device.js';
import {
  DAY,
  GEO,
  T0,
  contextFor,
  ipObservation,
  login,
  paramsFor,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(newDevice);
const WINDOW = 90 * DAY;

function fromPhone(devices: string[], seen: { last?: number; first?: number } = {}, geo = GEO.milton) {
  const e = login({ deviceId: 'dev-new-phone', eventId: 'login-phone', geo });
  const s = snapshot().distinct('device', WINDOW, devices).lastSeenBefore('device', seen);
  return newDevice.evaluate(contextFor(e, s), p);
}

describe('login.new_device', () => {
  it('is weak and ships with a 90 day history window', () => {
    expect(newDevice.weak).toBe(true);
    expect(p.window).toBe(WINDOW);
  });

  it('fires on a login from a device unseen in the window, with this login as evidence', () => {
    expect(fromPhone(['dev-new-phone', 'dev-laptop'])).toEqual({
      status: 'fired',
      observed: 1,
      threshold: 1,
      window: '90d',
      summary: 'device unseen in 90d; 1 other device(s) known',
      evidenceEventIds: ['login-phone'],
    });
  });

  it('does not fire for a device seen the day before', () => {
    expect(
      fromPhone(['dev-new-phone', 'dev-laptop'], { last: T0 - DAY, first: T0 - 30 * DAY }),
    ).toMatchObject({ status: 'below', observed: 0, threshold: 1, window: '90d' });
  });

  it('is exact at the edge of the history window', () => {
    const devices = ['dev-new-phone', 'dev-laptop'];
    expect(fromPhone(devices, { last: T0 - WINDOW, first: T0 - 300 * DAY }).status).toBe('fired');
    expect(fromPhone(devices, { last: T0 - WINDOW + 1, first: T0 - 300 * DAY }).status).toBe('below');
  });

  it('does not judge the first device an account uses', () => {
    expect(fromPhone(['dev-new-phone'])).toEqual({
      status: 'skipped',
      reason: 'no other device in the history window to compare with',
    });
  });

  it('is judged through a VPN too: a device is not a location', () => {
    expect(fromPhone(['dev-new-phone', 'dev-laptop'], {}, GEO.vpn).status).toBe('fired');
  });

  it('is triggered by successful logins that carry a device', () => {
    expect(newDevice.triggeredBy(login({ deviceId: 'dev-1' }), 'account')).toBe(true);
    expect(newDevice.triggeredBy(login({ deviceId: null }), 'account')).toBe(false);
    expect(newDevice.triggeredBy(login({ outcome: 'FAILURE', deviceId: 'dev-1' }), 'account')).toBe(false);
    expect(newDevice.triggeredBy(ipObservation({ deviceId: 'dev-1' }), 'account')).toBe(false);
  });
});
