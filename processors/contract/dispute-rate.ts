import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const disputeRate = defineSignal({
  id: 'contract.dispute_rate',
  family: 'contract',
  weak: false,
  description: 'Disputes and refunds against the freelancer in a window.',
  params: z.strictObject({
    ...signalBase,
    threshold: positiveInt().default(3),
    window: duration().default(30 * 86_400_000),
  }),
  triggeredBy: (e, role) =>
    role === 'freelancer' &&
    e.family === 'contract' &&
    (e.event.action === 'DISPUTED' || e.event.action === 'REFUNDED'),
  needs: (p) => ({ account: [{ q: 'count', kind: 'dispute', from: -p.window, to: 0, maxIds: 20 }] }),
  evaluate({ subject }, p) {
    const disputes = subject.count('dispute', p.window, 20);
    const m = {
      observed: disputes.n,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: `${disputes.n} disputes or refunds against the freelancer in ${formatDuration(p.window)}`,
    };
    return disputes.n >= p.threshold
      ? { status: 'fired', evidenceEventIds: disputes.ids, ...m }
      : { status: 'below', ...m };
  },
});
