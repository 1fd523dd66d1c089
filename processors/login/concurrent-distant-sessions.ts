import { z } from 'zod';
import { duration, formatDuration, positiveInt, positiveNumber, signalBase } from '../../config/params.js';
import { isPersonalLocation } from '../../src/domain/events.js';
import { distanceKm } from '../../src/domain/distance.js';
import { defineSignal } from '../../src/domain/signal.js';
import { skipReason } from './new-country.js';

// One overlap can be a flight, a forgotten laptop or a geolocation error; the same account open in
// two far-apart places again and again is account sharing. So each login that finds a far session
// open is an episode (recorded as a sharingEpisode event), and the signal counts the episodes.
export const concurrentDistantSessions = defineSignal({
  id: 'login.concurrent_distant_sessions',
  family: 'login',
  weak: false,
  description:
    'Repeated episodes of sessions open at once in far-apart, non-anonymous locations (account sharing).',
  params: z.strictObject({
    ...signalBase,
    /** Episodes in the window, this one included. */
    threshold: positiveInt().default(3),
    /** Episodes are counted this far back. */
    window: duration().default(30 * 86_400_000),
    /** A session counts as open this long after its login unless it logged out. */
    sessionWindow: duration().default(2 * 3_600_000),
    minDistanceKm: positiveNumber().default(500),
  }),
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'SUCCESS' && e.event.sessionId !== null,
  needs: (p) => ({
    account: [
      { q: 'sessions', from: -p.sessionWindow },
      { q: 'count', kind: 'sharingEpisode', from: -p.window, to: 0, maxIds: 20 },
      // an episode already recorded while these sessions were open: the same episode, not another
      { q: 'count', kind: 'sharingEpisode', from: -p.sessionWindow, to: 0, maxIds: 1 },
    ],
  }),
  evaluate({ event, subject }, p) {
    if (event.family !== 'login') return { status: 'skipped', reason: 'not a login' };
    const here = event.geo;
    if (!isPersonalLocation(here)) return { status: 'skipped', reason: skipReason(here) };
    const far = subject
      .sessions(p.sessionWindow)
      .filter((s) => s.sessionId !== event.event.sessionId)
      .map((s) => ({ s, km: distanceKm(here, s) }))
      .filter((x) => x.km >= p.minDistanceKm);
    const earlier = subject.count('sharingEpisode', p.window, 20);
    const window = formatDuration(p.window);
    if (!far.length) {
      return {
        status: 'below',
        observed: 0,
        threshold: p.threshold,
        window,
        summary: `no far-away open session now (${earlier.n} earlier episode(s) in ${window})`,
      };
    }
    const ongoing = subject.count('sharingEpisode', p.sessionWindow, 1).n > 0;
    const episodes = earlier.n + (ongoing ? 0 : 1);
    const m = {
      observed: episodes,
      threshold: p.threshold,
      window,
      summary: `${episodes} episode(s) in ${window} of sessions open at once far apart; now ${far.length} other open session(s) ${far.map((x) => `${Math.round(x.km)} km`).join(', ')} away`,
      ...(!ongoing && { recordAs: 'sharingEpisode' as const }),
    };
    return episodes >= p.threshold
      ? {
          status: 'fired',
          evidenceEventIds: [
            ...new Set([...earlier.ids, ...far.map((x) => x.s.eventId), event.event.eventId]),
          ],
          ...m,
        }
      : { status: 'below', ...m };
  },
});
