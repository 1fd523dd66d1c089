import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const failedVerifications = defineSignal({
  id: 'payment.failed_verifications',
  family: 'payment',
  weak: false,
  description: 'Failed payment-method verifications in a window (card testing).',
  params: z.strictObject({
    ...signalBase,
    threshold: positiveInt().default(3),
    window: duration().default(86_400_000),
  }),
  triggeredBy: (e) => e.family === 'payment' && e.event.action === 'VERIFICATION_FAILED',
  needs: (p) => ({
    account: [{ q: 'count', kind: 'verificationFailed', from: -p.window, to: 0, maxIds: 20 }],
  }),
  evaluate({ subject }, p) {
    const failed = subject.count('verificationFailed', p.window, 20);
    const m = {
      observed: failed.n,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: `${failed.n} failed payment-method verifications in ${formatDuration(p.window)}`,
    };
    return failed.n >= p.threshold
      ? { status: 'fired', evidenceEventIds: failed.ids, ...m }
      : { status: 'below', ...m };
  },
});
