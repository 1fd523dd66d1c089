import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const rapidFeedbackLoop = defineSignal({
  id: 'contract.rapid_feedback_loop',
  family: 'contract',
  weak: false,
  description: 'Repeated short contracts with one counterpart ending in top ratings (feedback building).',
  params: z.strictObject({
    ...signalBase,
    threshold: positiveInt().default(3),
    window: duration().default(30 * 86_400_000),
    /** A contract this short or shorter counts as "short". */
    maxContractDuration: duration().default(3 * 86_400_000),
    minRating: z.int({ error: 'expected a rating from 1 to 5' }).min(1).max(5).default(5),
  }),
  triggeredBy: (e) => e.family === 'contract' && e.event.action === 'ENDED',
  needs: () => ({ account: [{ q: 'contracts' }] }),
  evaluate({ event, subject, role }, p) {
    if (event.family !== 'contract') return { status: 'skipped', reason: 'not a contract event' };
    const e = event.event;
    const other = role === 'client' ? e.freelancerAccountId : e.clientAccountId;
    const loops = subject
      .contracts()
      .filter(
        (c) =>
          c.counterpart === other &&
          c.startedAt !== undefined &&
          c.endedAt !== undefined &&
          c.endedAt > subject.asOf - p.window &&
          c.endedAt - c.startedAt <= p.maxContractDuration &&
          (c.rating ?? 0) >= p.minRating,
      );
    const m = {
      observed: loops.length,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: `${loops.length} contract(s) with ${other} of ${formatDuration(p.maxContractDuration)} or less rated ${p.minRating}+ in ${formatDuration(p.window)}`,
    };
    return loops.length >= p.threshold
      ? { status: 'fired', evidenceEventIds: loops.map((c) => c.endEventId ?? c.contractId), ...m }
      : { status: 'below', ...m };
  },
});
