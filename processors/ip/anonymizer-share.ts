import { z } from 'zod';
import { duration, formatDuration, positiveInt, ratio, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const anonymizerShare = defineSignal({
  id: 'ip.anonymizer_share',
  family: 'ip',
  weak: true,
  description: 'Share of recent sessions through a VPN, Tor, a public proxy or a hosting provider.',
  params: z.strictObject({
    ...signalBase,
    threshold: ratio().default(0.8),
    window: duration().default(3 * 86_400_000),
    /** A share of two sessions says little. */
    minSessions: positiveInt().default(5),
  }),
  // judged at each successful login; IP observations feed the counts but are too frequent to judge
  // each time (a third of all events), and a weak signal loses nothing by waiting for the next login
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'SUCCESS',

  needs: (p) => ({
    account: [
      { q: 'count', kind: 'session', from: -p.window, to: 0, maxIds: 0 },
      { q: 'count', kind: 'anonymizedSession', from: -p.window, to: 0, maxIds: 20 },
    ],
  }),
  evaluate({ subject }, p) {
    const all = subject.count('session', p.window, 0);
    const anon = subject.count('anonymizedSession', p.window, 20);
    if (all.n < p.minSessions) {
      return {
        status: 'skipped',
        reason: `${all.n} session(s) in ${formatDuration(p.window)}, fewer than ${p.minSessions}`,
      };
    }
    const share = anon.n / all.n;
    const m = {
      observed: Math.round(share * 1000) / 1000,

      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: `${anon.n} of ${all.n} sessions in ${formatDuration(p.window)} through an anonymizer or hosting provider`,
    };
    return share >= p.threshold
      ? { status: 'fired', evidenceEventIds: anon.ids, ...m }
      : { status: 'below', ...m };
  },
});
