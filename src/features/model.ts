// The feature model: what fairflag remembers per account and per shared entity, and the
// questions signals can ask of it. The semantics live in ./account-features.ts (per account) and
// ./shared-entities.ts (across accounts); how they are kept in Redis, in ./persisted.ts.

/** Timestamped events kept one sorted set per kind (member = event id, score = event time). */
export const EVENT_KINDS = {
  loginFailed: 'F',
  session: 'S',
  anonymizedSession: 'A',
  methodAdded: 'P',
  verificationFailed: 'X',
  milestonePaid: 'M',
  dispute: 'D',
  nonDeliveryDispute: 'N',
  /**
   * Logins that found a far-away session of the account open (account sharing), recorded by the
   * engine when login.concurrent_distant_sessions says so: what a signal judged, like observations,
   * so it depends on the order logins were judged in.
   */
  sharingEpisode: 'E',
} as const;
export type EventKind = keyof typeof EVENT_KINDS;

/**
 * Kinds that are only ever counted, never listed (sessions: the denominator of the anonymizer
 * share). Their sets keep a 64-bit digest of each event id instead of the id: 11 characters
 * instead of a 36-character UUID, still counting each event once. Asking for their ids is an error.
 */
export const COUNTED_ONLY: ReadonlySet<EventKind> = new Set<EventKind>(['session']);

/** Distinct values with their last-seen event time, all in one sorted set per account. */
export const VALUE_KINDS = {
  country: 'c',
  device: 'd',
  personalIp: 'i',
  /** Anonymizer, hosting or carrier-NAT: shared by strangers. */
  anonymizerIp: 'I',
  prefix: 'p',
  asn: 'n',
  instrument: 'f',
} as const;
export type ValueKind = keyof typeof VALUE_KINDS;

/** Shared entities that link accounts: each keeps the accounts seen on it. */
export const ENTITY_TYPES = { ip: 'i', device: 'd', instrument: 'p' } as const;
export type EntityType = keyof typeof ENTITY_TYPES;

/** A question about one account, relative to the event's own time `t`. */
export type AccountQuery =
  /** Events of a kind with time in (t+from, t+to]; `from` is usually -window and `to` 0. */
  | { q: 'count'; kind: EventKind; from: number; to: number; maxIds: number }
  /** Distinct values of a kind last seen after t+from. */
  | { q: 'distinct'; kind: ValueKind; from: number; maxValues: number }
  /** Sessions started after t+from and not logged out. */
  | { q: 'sessions'; from: number }
  /** The account's contract records (counterpart history). */
  | { q: 'contracts' };

/** Parts of an account's hash a read can ask for: the last two logins, context, observations. */
export const ACCOUNT_MEMORY = {
  logins: ['ll', 'lp'],
  context: ['ct', 'at', 'iv', 'st'],
  observations: ['o:*'],
} as const;
export type AccountMemory = keyof typeof ACCOUNT_MEMORY;

export function queryKey(q: AccountQuery): string {
  switch (q.q) {
    case 'count':
      return `count|${q.kind}|${q.from}|${q.to}`;
    case 'distinct':
      return `distinct|${q.kind}|${q.from}`;
    case 'sessions':
      return `sessions|${q.from}`;
    case 'contracts':
      return 'contracts';
  }
}

/** A change to one account's features. Every op is idempotent for the same event. */
export type AccountOp =
  | { op: 'event'; kind: EventKind; eventId: string }
  /** Records the value as seen; the result tells when it was last seen before (novelty). */
  | { op: 'value'; kind: ValueKind; value: string; noveltyName?: string }
  | {
      op: 'sessionStart';
      sessionId: string;
      latitude: number;
      longitude: number;
      /** The location's accuracy radius (km), as for a login: distances are measured alike. */
      accuracyKm?: number;
      eventId: string;
    }
  | { op: 'sessionEnd'; sessionId: string }
  /** Account context, last write by event time wins. */
  | { op: 'context'; field: ContextField; value: string }
  | { op: 'login'; login: LoginRecord }
  | { op: 'contract'; contractId: string; patch: ContractPatch };

export const CONTEXT_FIELDS = {
  createdAt: 'ct',
  accountType: 'at',
  identity: 'iv',
  stats: 'st',
} as const;
export type ContextField = keyof typeof CONTEXT_FIELDS;

/** A successful login as remembered for impossible travel and explain. */
export interface LoginRecord {
  at: number;
  eventId: string;
  ip: string;
  country?: string;
  city?: string;
  latitude?: number;
  longitude?: number;
  accuracyKm?: number;
  anonymizer: boolean;
  hosting: boolean;
  deviceId?: string;
}

/** Fields of a contract record; the store merges them (start = earliest, lastPaid = latest...). */
export interface ContractPatch {
  role?: 'client' | 'freelancer';
  counterpart?: string;
  startedAt?: number;
  endedAt?: number;
  rating?: number;
  firstPaidAt?: number;
  lastPaidAt?: number;
  disputedAt?: number;
  /** The ENDED event, evidence for feedback-loop patterns. */
  endEventId?: string;
}
export interface ContractRecord extends ContractPatch {
  contractId: string;
}

/** A signal observation remembered for corroboration across events. */
export interface StoredObservation {
  signalId: string;
  family: string;
  observedAt: number;
  eventId: string;
  observed: number;
  threshold: number;
  window: string;
  summary: string;
  evidenceEventIds: string[];
}

/** The open flag of one account and queue, as last emitted. */
export interface FlagState {
  flagId: string;
  revision: number;
  severity: string;
  score: number;
  createdAt: number;
  updatedAt: number;
  signals: StoredObservation[];
}

export interface CountResult {
  n: number;
  /** Newest first, at most maxIds. */
  ids: string[];
}
export interface DistinctResult {
  n: number;
  /** Newest first, at most maxValues. */
  values: string[];
}
export interface SessionRecord {
  sessionId: string;
  eventId: string;
  latitude: number;
  longitude: number;
  accuracyKm?: number;
  startedAt: number;
}

export type QueryResult = CountResult | DistinctResult | SessionRecord[] | ContractRecord[];

/** What a signal sees of one account, as of the event being scored. */
export interface AccountSnapshot {
  accountId: string;
  /** The time windows are measured from: the event's own time. */
  asOf: number;
  /** The event was older than the allowed lateness: windowed features ignored it. */
  late: boolean;
  /**
   * For each value op in order, as stored before this event: when the value was last seen, and
   * (for values whose novelty matters) first seen. Absent = never.
   */
  lastSeenBefore: { last?: number; first?: number }[];
  /** Answers a question relative to asOf; undefined if it may not be asked (see AccountView). */
  answer(q: AccountQuery): QueryResult | undefined;
  context: AccountContext;
  lastLogin?: LoginRecord;
  previousLogin?: LoginRecord;
  observations: StoredObservation[];
  openFlags: ReadonlyMap<string, FlagState>;
  clearedPatterns: ReadonlyMap<string, number>;
}

/** Retention and caps, derived from the config's windows (see policy.ts). */
export interface FeatureLayout {
  keyPrefix: string;
  allowedLatenessMs: number;
  /** How long each event kind is kept: its longest window plus lateness. */
  eventRetentionMs: Record<EventKind, number>;
  valueRetentionMs: number;
  sessionRetentionMs: number;
  entityRetentionMs: Record<EntityType, number>;
  caps: { eventsPerKind: number; values: number; sessions: number; accountsPerEntity: number };
}

export interface AccountContext {
  createdAt?: number;
  accountType?: string;
  identityVerified?: boolean;
  identityChangedAt?: number;
  lifetimeCompletedContracts?: number;
  lifetimePaidHours?: number;
  lifetimeEarnings?: number;
}

export interface EntityQuery {
  from: number;
  maxIds: number;
}
export interface EntitySnapshot {
  type: EntityType;
  id: string;
  /** Distinct accounts seen on the entity after t+from, newest first. */
  accounts: DistinctResult;
  capped: boolean;
}
