import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const methodVelocity = defineSignal({
  id: 'payment.method_velocity',
  family: 'payment',
  weak: false,
  description: 'Payment methods added in a window.',
  params: z.strictObject({
    ...signalBase,
    threshold: positiveInt().default(3),
    window: duration().default(86_400_000),
  }),
  triggeredBy: (e) => e.family === 'payment' && e.event.action === 'ADDED',
  needs: (p) => ({ account: [{ q: 'count', kind: 'methodAdded', from: -p.window, to: 0, maxIds: 20 }] }),
  evaluate({ subject }, p) {
    const added = subject.count('methodAdded', p.window, 20);
    const m = {
      observed: added.n,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: `${added.n} payment methods added in ${formatDuration(p.window)}`,
    };
    return added.n >= p.threshold
      ? { status: 'fired', evidenceEventIds: added.ids, ...m }
      : { status: 'below', ...m };
  },
});
