import { z } from 'zod';
import { duration, formatDuration, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const firstPaymentThenDispute = defineSignal({
  id: 'contract.first_payment_then_dispute',
  family: 'contract',
  weak: false,
  description: 'A new account takes a first milestone payment and is then disputed for non-delivery.',
  params: z.strictObject({
    ...signalBase,
    window: duration().default(30 * 86_400_000),
    /** "New": created this recently. */
    maxAccountAge: duration().default(30 * 86_400_000),
  }),
  triggeredBy: (e, role) =>
    role === 'freelancer' &&
    e.family === 'contract' &&
    e.event.action === 'DISPUTED' &&
    e.event.disputeReason === 'NON_DELIVERY',
  needs: (p) => ({
    reads: ['context'],
    account: [
      { q: 'count', kind: 'milestonePaid', from: -p.window, to: 0, maxIds: 10 },
      { q: 'count', kind: 'nonDeliveryDispute', from: -p.window, to: 0, maxIds: 10 },
    ],
  }),
  evaluate({ subject }, p) {
    const created = subject.context.createdAt;
    if (created === undefined) return { status: 'skipped', reason: 'account creation time unknown' };
    const age = subject.asOf - created;
    if (age > p.maxAccountAge) {
      return {
        status: 'skipped',
        reason: `account is ${formatDuration(age)} old, older than ${formatDuration(p.maxAccountAge)}`,
      };
    }
    const paid = subject.count('milestonePaid', p.window, 10);
    const disputed = subject.count('nonDeliveryDispute', p.window, 10);
    const m = {
      observed: paid.n > 0 ? disputed.n : 0,
      threshold: 1,
      window: formatDuration(p.window),
      summary: `account ${formatDuration(age)} old: ${paid.n} milestone payment(s) received, ${disputed.n} non-delivery dispute(s)`,
    };
    return paid.n > 0 && disputed.n > 0
      ? { status: 'fired', evidenceEventIds: [...paid.ids, ...disputed.ids], ...m }
      : { status: 'below', ...m };
  },
});
