import { isPersonalLocation } from '../../src/domain/events.js';
import type { AccountOp } from '../../src/features/model.js';
import { networkFacts, sessionSeen, type EntityPlan, type FamilyProcessor } from '../plan.js';

export const planLogin: FamilyProcessor<'login'> = ({ event: e, geo }) => {
  const ops: AccountOp[] = [];
  const entities: EntityPlan[] = [];
  if (e.outcome === 'FAILURE') {
    // the attacker's IP is not the account's: record the attempt only
    ops.push({ op: 'event', kind: 'loginFailed', eventId: e.eventId });
  } else if (e.outcome === 'LOGOUT') {
    if (e.sessionId) ops.push({ op: 'sessionEnd', sessionId: e.sessionId });
  } else {
    sessionSeen(e.eventId, geo, ops);
    if (isPersonalLocation(geo) && geo.country) {
      ops.push({ op: 'value', kind: 'country', value: geo.country, noveltyName: 'country' });
      if (e.sessionId) {
        ops.push({
          op: 'sessionStart',
          sessionId: e.sessionId,
          latitude: geo.latitude,
          longitude: geo.longitude,
          ...(geo.accuracyKm !== undefined && { accuracyKm: geo.accuracyKm }),
          eventId: e.eventId,
        });
      }
    }
    networkFacts(e.accountId, geo, e.deviceId, ops, entities, true);
    ops.push({
      op: 'login',
      login: {
        at: e.occurredAt,
        eventId: e.eventId,
        ip: e.ip,
        anonymizer: geo?.anonymizer ?? false,
        hosting: geo?.hosting ?? false,
        ...(geo?.country !== undefined && { country: geo.country }),
        ...(geo?.city !== undefined && { city: geo.city }),
        ...(geo?.latitude !== undefined && { latitude: geo.latitude }),
        ...(geo?.longitude !== undefined && { longitude: geo.longitude }),
        ...(geo?.accuracyKm !== undefined && { accuracyKm: geo.accuracyKm }),
        ...(e.deviceId !== null && { deviceId: e.deviceId }),
      },
    });
  }
  return { subjects: [{ accountId: e.accountId, role: 'account', ops }], entities };
};
