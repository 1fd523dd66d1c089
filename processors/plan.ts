// What a family processor produces for one event: feature changes per account ("subjects") and
// per shared entity. Signals then add their questions; the store answers both in one round trip.
import type { EnrichedEvent, Geo } from '../src/domain/events.js';
import type { SubjectRole } from '../src/domain/signal.js';
import type { AccountOp, EntityType } from '../src/features/model.js';
import { isSharedByNature } from './ip/shared-by-accounts.js';

export interface SubjectPlan {
  accountId: string;
  role: SubjectRole;
  ops: AccountOp[];
}
export interface EntityPlan {
  type: EntityType;
  id: string;
  /** The account seen on the entity by this event. */
  addAccount?: string;
}
export interface EventPlan {
  subjects: SubjectPlan[];
  entities: EntityPlan[];
}

export type FamilyProcessor<F extends EnrichedEvent['family']> = (
  e: Extract<EnrichedEvent, { family: F }>,
) => EventPlan;

/**
 * Network facts any event with an IP or device adds to the acting account: the IP (personal or
 * anonymizer), its prefix and ASN, the device; and the account on the shared IP and device.
 */
export function networkFacts(
  accountId: string,
  geo: Geo | null,
  deviceId: string | null,
  ops: AccountOp[],
  entities: EntityPlan[],
  /** Record the account on the shared device: for sign-ins and sign-ups, where a device is used
   *  to enter the account (an IP observation or a payment repeats what the login said). */
  deviceEntity = false,
): void {
  if (geo) {
    // only a personal IP says something about who uses the account (self-dealing compares them);
    // anonymizers, hosting and a mobile carrier's NAT are shared by strangers
    ops.push({ op: 'value', kind: isSharedByNature(geo) ? 'anonymizerIp' : 'personalIp', value: geo.ip });
    ops.push({ op: 'value', kind: 'prefix', value: geo.prefix });
    if (geo.asn !== undefined) ops.push({ op: 'value', kind: 'asn', value: String(geo.asn) });
    // a VPN exit or a mobile carrier's NAT links strangers, not accounts of one person
    if (!isSharedByNature(geo)) entities.push({ type: 'ip', id: geo.ip, addAccount: accountId });
  }
  if (deviceId) {
    ops.push({ op: 'value', kind: 'device', value: deviceId, noveltyName: 'device' });
    if (deviceEntity) entities.push({ type: 'device', id: deviceId, addAccount: accountId });
  }
}

/** A session seen (successful login or IP observation), for the anonymizer share. */
export function sessionSeen(eventId: string, geo: Geo | null, ops: AccountOp[]): void {
  ops.push({ op: 'event', kind: 'session', eventId });
  if (geo && (geo.anonymizer || geo.hosting)) ops.push({ op: 'event', kind: 'anonymizedSession', eventId });
}
