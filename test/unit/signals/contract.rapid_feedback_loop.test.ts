import { describe, expect, it } from 'vitest';
import { rapidFeedbackLoop } from '../../../processors/contract/rapid-feedback-loop.js';
import type { ContractRecord } from '../../../src/features/model.js';
import { DAY, HOUR, T0, contextFor, contract, login, paramsFor, snapshot } from '../../support/snapshot.js';

const p = paramsFor(rapidFeedbackLoop);

/** A contract with `counterpart` that ended `endedAgo` before T0 after `lasted`, rated `rating`. */
function record(
  n: number,
  o: {
    counterpart?: string;
    endedAgo?: number;
    lasted?: number;
    rating?: number;
    endEventId?: string | null;
  } = {},
): ContractRecord {
  const endedAt = T0 - (o.endedAgo ?? n * DAY);
  return {
    contractId: `contract-${n}`,
    role: 'freelancer',
    counterpart: o.counterpart ?? 'client-9',
    startedAt: endedAt - (o.lasted ?? 20 * HOUR),
    endedAt,
    rating: o.rating ?? 5,
    ...(o.endEventId !== null && { endEventId: o.endEventId ?? `ended-${n}` }),
  };
}

function evaluate(records: ContractRecord[], role: 'freelancer' | 'client' = 'freelancer', params = p) {
  const e = contract({
    action: 'ENDED',
    rating: 5,
    eventId: 'ended-1',
    contractId: 'contract-1',
    freelancerAccountId: 'free-1',
    clientAccountId: 'client-9',
  });
  const subject = role === 'freelancer' ? 'free-1' : 'client-9';
  return rapidFeedbackLoop.evaluate(contextFor(e, snapshot(subject).contracts(records), { role }), params);
}

describe('contract.rapid_feedback_loop', () => {
  it('is sufficient alone and ships with 3 contracts of 3 days or less rated 5 in 30 days', () => {
    expect(rapidFeedbackLoop.weak).toBe(false);
    expect(p.sufficientAlone).toBe(true);
    expect([p.threshold, p.window, p.maxContractDuration, p.minRating]).toEqual([3, 30 * DAY, 3 * DAY, 5]);
  });

  it('fires on 4 one-day contracts with the same client, all rated 5, with their endings as evidence', () => {
    expect(evaluate([1, 2, 3, 4].map((n) => record(n)))).toEqual({
      status: 'fired',
      observed: 4,
      threshold: 3,
      window: '30d',
      summary: '4 contract(s) with client-9 of 3d or less rated 5+ in 30d',
      evidenceEventIds: ['ended-1', 'ended-2', 'ended-3', 'ended-4'],
    });
  });

  it('does not fire on 2 such contracts', () => {
    expect(evaluate([record(1), record(2)])).toMatchObject({ status: 'below', observed: 2, threshold: 3 });
  });

  it('fires at exactly the threshold and not one below it', () => {
    expect(evaluate([record(1), record(2), record(3)])).toMatchObject({ status: 'fired', observed: 3 });
  });

  it('counts only short, top-rated contracts with this counterpart, ended inside the window', () => {
    const noise = [
      record(4, { counterpart: 'client-other' }),
      record(5, { lasted: 3 * DAY + 1 }),
      record(6, { rating: 4 }),
      record(7, { endedAgo: 30 * DAY }), // exactly at the window edge: outside
    ];
    expect(evaluate([record(1), record(2), ...noise])).toMatchObject({ status: 'below', observed: 2 });
    // the edges that do count: exactly 3 days long, ended just inside the window
    const edges = [record(8, { lasted: 3 * DAY }), record(9, { endedAgo: 30 * DAY - 1 })];
    expect(evaluate([record(1), ...edges])).toMatchObject({ status: 'fired', observed: 3 });
  });

  it('evaluates the client side against the freelancer, and falls back to contract ids as evidence', () => {
    const asClient = [1, 2, 3].map((n) => ({
      ...record(n, { counterpart: 'free-1', endEventId: null }),
      role: 'client' as const,
    }));
    expect(evaluate(asClient, 'client')).toMatchObject({
      status: 'fired',
      evidenceEventIds: ['contract-1', 'contract-2', 'contract-3'],
    });
    // a client's records with its freelancer do not count against the freelancer's own view
    expect(evaluate(asClient, 'freelancer')).toMatchObject({ status: 'below', observed: 0 });
  });

  it('is triggered by a contract ending, for both sides', () => {
    for (const role of ['client', 'freelancer'] as const)
      expect(rapidFeedbackLoop.triggeredBy(contract({ action: 'ENDED' }), role)).toBe(true);
    for (const action of ['STARTED', 'MILESTONE_PAID', 'DISPUTED', 'REFUNDED'] as const)
      expect(rapidFeedbackLoop.triggeredBy(contract({ action }), 'freelancer')).toBe(false);
    expect(rapidFeedbackLoop.triggeredBy(login(), 'account')).toBe(false);
  });
});
