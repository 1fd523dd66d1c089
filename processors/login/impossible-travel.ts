import { z } from 'zod';
import { positiveNumber, signalBase } from '../../config/params.js';
import { distanceKm } from '../../src/domain/distance.js';
import { defineSignal } from '../../src/domain/signal.js';
import { skipReason } from './new-country.js';

export const impossibleTravel = defineSignal({
  id: 'login.impossible_travel',
  family: 'login',
  weak: false,
  description:
    'Speed between consecutive successful logins above a bound; skipped when either IP is an anonymizer or hosting.',
  params: z.strictObject({
    ...signalBase,
    /** km/h; airliners cruise at about 900. */
    threshold: positiveNumber().default(1000),
    /** Shorter hops are within the error of IP geolocation. */
    minDistanceKm: positiveNumber().default(300),
  }),
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'SUCCESS',
  needs: () => ({ account: [], reads: ['logins'] }),

  evaluate({ event, subject }, p) {
    if (event.family !== 'login') return { status: 'skipped', reason: 'not a login' };
    const { lastLogin, previousLogin } = subject;
    if (!lastLogin || lastLogin.eventId !== event.event.eventId) {
      return { status: 'skipped', reason: 'a later login was already recorded (event arrived out of order)' };
    }
    if (!previousLogin) return { status: 'skipped', reason: 'no earlier login to compare with' };
    for (const [label, login] of [
      ['this', lastLogin],
      ['previous', previousLogin],
    ] as const) {
      if (login.anonymizer || login.hosting) {
        // the stored login keeps no anonymizer kinds: name them from the event when it is this one
        const geo =
          label === 'this' && event.geo
            ? event.geo
            : { ip: login.ip, anonymizerKinds: [], anonymizer: login.anonymizer, hosting: login.hosting };
        return { status: 'skipped', reason: `${label} login: ${skipReason(geo)}` };
      }
      if (login.latitude === undefined || login.longitude === undefined) {
        return { status: 'skipped', reason: `${label} login: no location known for ${login.ip}` };
      }
    }
    const from = previousLogin as Required<Pick<typeof previousLogin, 'latitude' | 'longitude'>> &
      typeof previousLogin;
    const to = lastLogin as Required<Pick<typeof lastLogin, 'latitude' | 'longitude'>> & typeof lastLogin;
    const km = distanceKm(from, to);
    // a minute at least: two logins in the same millisecond are not infinitely fast
    const hours = Math.max(to.at - from.at, 60_000) / 3_600_000;
    const speed = Math.round(km / hours);
    const minutes = Math.round((to.at - from.at) / 60_000);
    const m = {
      observed: km < p.minDistanceKm ? 0 : speed,
      threshold: p.threshold,
      window: 'consecutive logins',
      summary: `${where(from)} to ${where(to)}: ${Math.round(km)} km in ${minutes} min (${speed} km/h)`,
    };
    return km >= p.minDistanceKm && speed > p.threshold
      ? { status: 'fired', evidenceEventIds: [from.eventId, to.eventId], ...m }
      : { status: 'below', ...m };
  },
});

function where(l: { city?: string; country?: string; ip: string }): string {
  return l.city ? `${l.city}, ${l.country}` : (l.country ?? l.ip);
}
