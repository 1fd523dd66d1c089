import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const sharedInstrument = defineSignal({
  id: 'payment.shared_instrument',
  family: 'payment',
  weak: false,
  description: 'One payment-instrument fingerprint on several accounts.',
  params: z.strictObject({
    ...signalBase,
    threshold: positiveInt().default(3),
    window: duration().default(90 * 86_400_000),
  }),
  triggeredBy: (e) => e.family === 'payment' && e.event.action !== 'REMOVED',
  needs: (p) => ({ account: [], entity: { type: 'instrument', windowMs: p.window } }),
  evaluate({ event, entities }, p) {
    const inst = entities.instrument;
    if (!inst) return { status: 'skipped', reason: 'no instrument on this event' };
    const capped = inst.capped ? ' (account cap reached: more were seen)' : '';
    const m = {
      observed: inst.accounts.n,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: `instrument on ${inst.accounts.n} accounts in ${formatDuration(p.window)}${capped}: ${inst.accounts.values.join(', ')}`,
    };
    return inst.accounts.n >= p.threshold
      ? { status: 'fired', evidenceEventIds: [event.event.eventId], ...m }
      : { status: 'below', ...m };
  },
});
