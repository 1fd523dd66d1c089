import type { AccountOp, ContractPatch } from '../../src/features/model.js';
import { networkFacts, type EntityPlan, type FamilyProcessor, type SubjectPlan } from '../plan.js';

/** Both sides of a contract get its record; money and disputes count against the freelancer. */
export const planContract: FamilyProcessor<'contract'> = ({ event: e, geo }) => {
  const entities: EntityPlan[] = [];
  const step: ContractPatch = {};
  switch (e.action) {
    case 'STARTED':
      step.startedAt = e.occurredAt;
      break;
    case 'MILESTONE_PAID':
      step.firstPaidAt = e.occurredAt;
      step.lastPaidAt = e.occurredAt;
      break;
    case 'ENDED':
      step.endedAt = e.occurredAt;
      step.endEventId = e.eventId;
      if (e.rating !== null) step.rating = e.rating;
      break;
    case 'DISPUTED':
    case 'REFUNDED':
      step.disputedAt = e.occurredAt;
      break;
  }
  const side = (accountId: string, role: 'client' | 'freelancer', counterpart: string): SubjectPlan => {
    const ops: AccountOp[] = [
      { op: 'contract', contractId: e.contractId, patch: { ...step, role, counterpart } },
    ];
    if (role === 'freelancer') {
      if (e.action === 'MILESTONE_PAID') ops.push({ op: 'event', kind: 'milestonePaid', eventId: e.eventId });
      if (e.action === 'DISPUTED' || e.action === 'REFUNDED') {
        ops.push({ op: 'event', kind: 'dispute', eventId: e.eventId });
        if (e.disputeReason === 'NON_DELIVERY')
          ops.push({ op: 'event', kind: 'nonDeliveryDispute', eventId: e.eventId });
      }
    }
    if (accountId === e.accountId) networkFacts(accountId, geo, e.deviceId, ops, entities);
    return { accountId, role, ops };
  };
  return {
    subjects: [
      side(e.freelancerAccountId, 'freelancer', e.clientAccountId),
      side(e.clientAccountId, 'client', e.freelancerAccountId),
    ],
    entities,
  };
};
