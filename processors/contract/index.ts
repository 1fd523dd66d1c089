import type { AccountOp, ContractPatch } from '../../src/features/model.js';
import { networkFacts, type EntityPlan, type FamilyProcessor, type SubjectPlan } from '../plan.js';

/** Both sides of a contract get its record; money and disputes count against the freelancer. */
export const planContract: FamilyProcessor<'contract'> = ({ event: e, geo }) => {
  const entities: EntityPlan[] = [];
  if (e.action === 'UNKNOWN') {
    // a step added after this version: no contract record or money on either side, only where
    // the acting account was
    const ops: AccountOp[] = [];
    networkFacts(e.accountId, geo, e.deviceId, ops, entities);
    const role = e.accountId === e.clientAccountId ? 'client' : 'freelancer';
    return { subjects: [{ accountId: e.accountId, role, ops }], entities };
  }
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
