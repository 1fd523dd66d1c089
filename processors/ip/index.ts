import type { AccountOp } from '../../src/features/model.js';
import { networkFacts, sessionSeen, type EntityPlan, type FamilyProcessor } from '../plan.js';

export const planIpObservation: FamilyProcessor<'ip'> = ({ event: e, geo }) => {
  const ops: AccountOp[] = [];
  const entities: EntityPlan[] = [];
  sessionSeen(e.eventId, geo, ops);
  networkFacts(e.accountId, geo, e.deviceId, ops, entities);
  return { subjects: [{ accountId: e.accountId, role: 'account', ops }], entities };
};
