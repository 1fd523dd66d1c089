import type { AccountOp } from '../../src/features/model.js';
import { networkFacts, type EntityPlan, type FamilyProcessor } from '../plan.js';

/** Account context for mitigations: creation, identity verification, lifetime stats. */
export const planAccount: FamilyProcessor<'account'> = ({ event: e, geo }) => {
  const ops: AccountOp[] = [];
  const entities: EntityPlan[] = [];
  switch (e.action) {
    case 'CREATED':
      ops.push({ op: 'context', field: 'createdAt', value: String(e.occurredAt) });
      break;
    case 'IDENTITY_VERIFIED':
      ops.push({ op: 'context', field: 'identity', value: '1' });
      break;
    case 'IDENTITY_VERIFICATION_FAILED':
      ops.push({ op: 'context', field: 'identity', value: '0' });
      break;
    case 'STATS_UPDATED': {
      const part = (v: number | null) => (v === null ? '' : String(v));
      ops.push({
        op: 'context',
        field: 'stats',
        value: [e.lifetimeCompletedContracts, e.lifetimePaidHours, e.lifetimeEarnings].map(part).join('|'),
      });
      break;
    }
  }
  // UNKNOWN (a type added after this version) keeps whatever type is known
  if (e.accountType !== null && e.accountType !== 'UNKNOWN')
    ops.push({ op: 'context', field: 'accountType', value: e.accountType });
  networkFacts(e.accountId, geo, e.deviceId, ops, entities, e.action === 'CREATED');
  return { subjects: [{ accountId: e.accountId, role: 'account', ops }], entities };
};
