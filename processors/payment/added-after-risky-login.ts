import { z } from 'zod';
import { duration, formatDuration, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';
import { novelty } from '../login/novelty.js';

/**
 * A risky login is one from a new device and a new country. The pair is seen from either side,
 * so the signal holds whichever of the two topics is consumed first: on a payment event it looks
 * back at the login observations; on a login event it looks ahead at methods already added.
 */
export const addedAfterRiskyLogin = defineSignal({
  id: 'payment.added_after_risky_login',
  family: 'payment',
  weak: false,
  description: 'Payment method added soon after a login from a new device and a new country.',
  params: z.strictObject({
    ...signalBase,
    window: duration().default(2 * 3_600_000),
    /** The login history window for "new" device and country. */
    historyWindow: duration().default(90 * 86_400_000),
  }),
  triggeredBy: (e) =>
    (e.family === 'payment' && e.event.action === 'ADDED') ||
    (e.family === 'login' && e.event.outcome === 'SUCCESS'),
  needs: (p) => ({
    reads: ['observations'],
    account: [
      { q: 'count', kind: 'methodAdded', from: -1, to: p.window, maxIds: 10 },
      { q: 'distinct', kind: 'country', from: -p.historyWindow, maxValues: 0 },
      { q: 'distinct', kind: 'device', from: -p.historyWindow, maxValues: 0 },
    ],
  }),
  evaluate({ event, subject }, p) {
    const window = formatDuration(p.window);
    if (event.family === 'payment') {
      const t = event.event.occurredAt;
      const byLogin = new Map<string, Set<string>>();
      for (const o of subject.observations) {
        if (o.signalId !== 'login.new_device' && o.signalId !== 'login.new_country') continue;
        if (o.observedAt > t || o.observedAt <= t - p.window) continue;
        byLogin.set(o.eventId, (byLogin.get(o.eventId) ?? new Set()).add(o.signalId));
      }
      const risky = [...byLogin].filter(([, s]) => s.size === 2).map(([id]) => id);
      const m = {
        observed: risky.length,
        threshold: 1,
        window,
        summary: risky.length
          ? `method added ${window} or less after a login from a new device and a new country`
          : `no login from a new device and a new country in the ${window} before`,
      };
      return risky.length
        ? { status: 'fired', evidenceEventIds: [...risky, event.event.eventId], ...m }
        : { status: 'below', ...m };
    }
    if (event.family !== 'login' || event.geo?.anonymizer || event.geo?.hosting) {
      return { status: 'skipped', reason: 'login location not personal: not judged as a new country' };
    }
    const country = novelty(
      subject,
      'country',
      subject.distinct('country', p.historyWindow, 0).n,
      p.historyWindow,
    );
    const device = novelty(
      subject,
      'device',
      subject.distinct('device', p.historyWindow, 0).n,
      p.historyWindow,
    );
    if (country.kind !== 'new' || device.kind !== 'new') {
      return {
        status: 'below',
        observed: 0,
        threshold: 1,
        window,
        summary: 'login not from a new device and a new country',
      };
    }
    const added = subject.countAfter('methodAdded', p.window, 10);
    const m = {
      // 1 or 0 from either side, so the score does not depend on which topic was consumed first
      observed: Math.min(added.n, 1),

      threshold: 1,
      window,
      summary: `login from a new device and a new country; ${added.n} method(s) added within ${window} after`,
    };
    return added.n >= 1
      ? { status: 'fired', evidenceEventIds: [event.event.eventId, ...added.ids], ...m }
      : { status: 'below', ...m };
  },
});
