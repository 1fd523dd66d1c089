import type { AccountOp } from '../../src/features/model.js';
import { networkFacts, type EntityPlan, type FamilyProcessor } from '../plan.js';

export const planPaymentMethod: FamilyProcessor<'payment'> = ({ event: e, geo }) => {
  const ops: AccountOp[] = [];
  const entities: EntityPlan[] = [];
  if (e.action === 'ADDED') ops.push({ op: 'event', kind: 'methodAdded', eventId: e.eventId });
  if (e.action === 'VERIFICATION_FAILED')
    ops.push({ op: 'event', kind: 'verificationFailed', eventId: e.eventId });
  if (e.action !== 'REMOVED') {
    ops.push({ op: 'value', kind: 'instrument', value: e.instrumentFingerprint });
    entities.push({ type: 'instrument', id: e.instrumentFingerprint, addAccount: e.accountId });
  }
  networkFacts(e.accountId, geo, e.deviceId, ops, entities);
  return { subjects: [{ accountId: e.accountId, role: 'account', ops }], entities };
};
