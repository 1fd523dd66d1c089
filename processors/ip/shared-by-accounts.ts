import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';
import type { Geo } from '../../src/domain/events.js';

/** Where many honest accounts share one address: never evidence of multiple accounts. */
export function isSharedByNature(geo: Geo | null): boolean {
  return !geo || geo.anonymizer || geo.hosting || geo.carrierNat;
}

export const sharedByAccounts = defineSignal({
  id: 'ip.shared_by_accounts',
  family: 'ip',
  weak: false,
  description:
    'Distinct accounts seen on one IP in a window (multiple accounts); ignores anonymizer, hosting and carrier-NAT addresses.',
  params: z.strictObject({
    ...signalBase,
    threshold: positiveInt().default(4),
    window: duration().default(7 * 86_400_000),
  }),
  triggeredBy: (e) =>
    (e.family !== 'login' || e.event.outcome === 'SUCCESS') && !!e.geo && !isSharedByNature(e.geo),
  needs: (p) => ({ account: [], entity: { type: 'ip', windowMs: p.window } }),
  evaluate({ event, entities }, p) {
    if (isSharedByNature(event.geo))
      return { status: 'skipped', reason: 'anonymizer, hosting or carrier-NAT address' };
    const ip = entities.ip;
    if (!ip) return { status: 'skipped', reason: 'no IP on this event' };
    const capped = ip.capped ? ' (account cap reached: more were seen)' : '';
    const m = {
      observed: ip.accounts.n,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: `${ip.accounts.n} accounts on ${ip.id} in ${formatDuration(p.window)}${capped}: ${ip.accounts.values.join(', ')}`,
    };
    return ip.accounts.n >= p.threshold
      ? { status: 'fired', evidenceEventIds: [event.event.eventId], ...m }
      : { status: 'below', ...m };
  },
});
