import { z } from 'zod';
import { duration, formatDuration, positiveInt, positiveNumber, signalBase } from '../../config/params.js';
import { isPersonalLocation } from '../../src/domain/events.js';
import { distanceKm } from '../../src/domain/distance.js';
import { defineSignal } from '../../src/domain/signal.js';
import { skipReason } from './new-country.js';

export const concurrentDistantSessions = defineSignal({
  id: 'login.concurrent_distant_sessions',
  family: 'login',
  weak: false,
  description: 'Overlapping sessions from far-apart, non-anonymous locations (account sharing).',
  params: z.strictObject({
    ...signalBase,
    /** Other open sessions far from this login. */
    threshold: positiveInt().default(1),
    /** A session counts as open this long after its login unless it logged out. */
    window: duration().default(2 * 3_600_000),
    minDistanceKm: positiveNumber().default(500),
  }),
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'SUCCESS' && e.event.sessionId !== null,
  needs: (p) => ({ account: [{ q: 'sessions', from: -p.window }] }),
  evaluate({ event, subject }, p) {
    if (event.family !== 'login') return { status: 'skipped', reason: 'not a login' };
    if (!isPersonalLocation(event.geo)) return { status: 'skipped', reason: skipReason(event.geo) };
    const here = { ...event.geo, accuracyKm: event.geo.accuracyKm };
    const far = subject
      .sessions(p.window)
      .filter((s) => s.sessionId !== event.event.sessionId)
      .map((s) => ({ s, km: distanceKm(here, s) }))
      .filter((x) => x.km >= p.minDistanceKm);
    const m = {
      observed: far.length,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: far.length
        ? `${far.length} other open session(s) ${far.map((x) => `${Math.round(x.km)} km`).join(', ')} away`
        : 'no far-away open session',
    };
    return far.length >= p.threshold
      ? { status: 'fired', evidenceEventIds: [...far.map((x) => x.s.eventId), event.event.eventId], ...m }
      : { status: 'below', ...m };
  },
});
