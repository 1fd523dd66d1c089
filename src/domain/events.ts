// Decoded input events, one type per family, mirroring schemas/*.avsc.
//
// UNKNOWN is each enum's Avro default: a symbol a newer producer added that this version does
// not know reads as UNKNOWN (docs/schemas.md), and every processor treats it as saying nothing.

export const FAMILIES = ['login', 'ip', 'payment', 'contract', 'account'] as const;
export type Family = (typeof FAMILIES)[number];

interface EventBase {
  eventId: string;
  accountId: string;
  /** Event time, epoch milliseconds. Every window is over this, never over processing time. */
  occurredAt: number;
}

export interface LoginEvent extends EventBase {
  outcome: 'SUCCESS' | 'FAILURE' | 'LOGOUT' | 'UNKNOWN';
  ip: string;
  deviceId: string | null;
  sessionId: string | null;
}

export interface IpObservationEvent extends EventBase {
  ip: string;
  source: string;
  deviceId: string | null;
  sessionId: string | null;
}

export interface PaymentMethodEvent extends EventBase {
  action: 'ADDED' | 'REMOVED' | 'VERIFICATION_SUCCEEDED' | 'VERIFICATION_FAILED' | 'UNKNOWN';
  methodId: string;
  methodType: 'CARD' | 'BANK_ACCOUNT' | 'WALLET' | 'OTHER';
  instrumentFingerprint: string;
  ip: string | null;
  deviceId: string | null;
}

export interface ContractEvent extends EventBase {
  contractId: string;
  clientAccountId: string;
  freelancerAccountId: string;
  action: 'STARTED' | 'MILESTONE_PAID' | 'ENDED' | 'DISPUTED' | 'REFUNDED' | 'UNKNOWN';
  amount: number | null;
  currency: string | null;
  rating: number | null;
  disputeReason: 'NON_DELIVERY' | 'QUALITY' | 'SCOPE' | 'OTHER' | null;
  ip: string | null;
  deviceId: string | null;
}

export interface AccountEvent extends EventBase {
  action: 'CREATED' | 'IDENTITY_VERIFIED' | 'IDENTITY_VERIFICATION_FAILED' | 'STATS_UPDATED' | 'UNKNOWN';
  accountType: 'FREELANCER' | 'CLIENT' | 'AGENCY' | 'UNKNOWN' | null;
  lifetimeCompletedContracts: number | null;
  lifetimePaidHours: number | null;
  lifetimeEarnings: number | null;
  ip: string | null;
  deviceId: string | null;
}

export type ActivityEvent =
  | { family: 'login'; event: LoginEvent }
  | { family: 'ip'; event: IpObservationEvent }
  | { family: 'payment'; event: PaymentMethodEvent }
  | { family: 'contract'; event: ContractEvent }
  | { family: 'account'; event: AccountEvent };

export interface ReviewOutcome {
  outcomeId: string;
  flagId: string;
  accountId: string;
  outcome: 'CLEARED' | 'CONFIRMED' | 'NEEDS_MORE_INFO' | 'UNKNOWN';
  noteCategory: string | null;
  decidedAt: number;
}

/**
 * An event whose step this version does not know: a login outcome or an action a newer producer
 * added, read as the enum's default. Neutral: it changes no feature and no signal looks at it.
 */
export function isUnknownStep(e: ActivityEvent): boolean {
  switch (e.family) {
    case 'login':
      return e.event.outcome === 'UNKNOWN';
    case 'payment':
    case 'contract':
    case 'account':
      return e.event.action === 'UNKNOWN';
    case 'ip':
      return false;
  }
}

/** What MaxMind says about an IP. Absent fields mean the databases do not know. */
export interface Geo {
  ip: string;
  /** Network prefix used for churn: /24 for IPv4, /48 for IPv6. */
  prefix: string;
  country?: string;
  city?: string;
  latitude?: number;
  longitude?: number;
  accuracyKm?: number;
  asn?: number;
  asOrg?: string;
  /** VPN, Tor exit, public or residential proxy: the location says nothing about the person. */
  anonymizer: boolean;
  hosting: boolean;
  /** Mobile carrier or carrier-grade NAT: many honest accounts share one address. */
  carrierNat: boolean;
  anonymizerKinds: string[];
}

export type Enriched<T> = { family: Family; event: T; geo: Geo | null };
export type EnrichedEvent = ActivityEvent & { geo: Geo | null };

/** Location is meaningful only when the IP is not an anonymizer or a hosting provider. */
export function isPersonalLocation(geo: Geo | null): geo is Geo & { latitude: number; longitude: number } {
  return (
    !!geo && !geo.anonymizer && !geo.hosting && geo.latitude !== undefined && geo.longitude !== undefined
  );
}
