// In-memory builders for unit tests: feature snapshots and views as the store would return them,
// enriched events per family with realistic MaxMind locations, and the shipped config's params.
// No Kafka, no Redis: signals and scoring are pure functions of these.
import type { SignalBaseParams } from '../../config/params.js';
import { planEvent } from '../../processors/registry.js';
import type {
  AccountEvent,
  ContractEvent,
  EnrichedEvent,
  Geo,
  IpObservationEvent,
  LoginEvent,
  PaymentMethodEvent,
} from '../../src/domain/events.js';
import type { SignalContext, SignalDefinition, SubjectRole } from '../../src/domain/signal.js';
import { compilePolicy, paramsOf, type Policy } from '../../src/engine/policy.js';
import {
  queryKey,
  type AccountContext,
  type AccountQuery,
  type AccountSnapshot,
  type ContractRecord,
  type CountResult,
  type DistinctResult,
  type EntitySnapshot,
  type EntityType,
  type EventKind,
  type FlagState,
  type LoginRecord,
  type SessionRecord,
  type StoredObservation,
  type ValueKind,
} from '../../src/features/model.js';
import { AccountView, mergeObservations, noveltyIndex } from '../../src/features/view.js';
import { loadConfig, type LoadedConfig } from '../../src/runtime/config-loader.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A fixed event time for every test: 2025-03-03 09:00 UTC. */
export const T0 = Date.UTC(2025, 2, 3, 9, 0, 0);

// ---------------------------------------------------------------------------------------------
// Locations, as GeoIp.lookup() returns them for MaxMind's test databases (test/fixtures/maxmind).

const geos = {
  /** Milton, US: a residential address. */
  milton: {
    ip: '216.160.83.56',
    prefix: '216.160.83.0/24',
    country: 'US',
    city: 'Milton',
    latitude: 47.2513,
    longitude: -122.3149,
    accuracyKm: 22,
    asn: 209,
    anonymizer: false,
    hosting: false,
    carrierNat: false,
    anonymizerKinds: [],
  },
  /** Changchun, CN: residential (Cable/DSL). */
  changchun: {
    ip: '175.16.199.1',
    prefix: '175.16.199.0/24',
    country: 'CN',
    city: 'Changchun',
    latitude: 43.88,
    longitude: 125.3228,
    accuracyKm: 100,
    anonymizer: false,
    hosting: false,
    carrierNat: false,
    anonymizerKinds: [],
  },
  /** Linköping, SE. */
  linkoping: {
    ip: '89.160.20.112',
    prefix: '89.160.20.0/24',
    country: 'SE',
    city: 'Linköping',
    latitude: 58.4167,
    longitude: 15.6167,
    accuracyKm: 76,
    asn: 29518,
    asOrg: 'Bredband2 AB',
    anonymizer: false,
    hosting: false,
    carrierNat: false,
    anonymizerKinds: [],
  },
  /** Melbourne, AU. */
  melbourne: {
    ip: '214.0.1.1',
    prefix: '214.0.1.0/24',
    country: 'AU',
    city: 'Melbourne',
    latitude: -37.8159,
    longitude: 144.9669,
    accuracyKm: 20,
    asn: 721,
    asOrg: 'DoD Network Information Center',
    anonymizer: false,
    hosting: false,
    carrierNat: false,
    anonymizerKinds: [],
  },
  /** A commercial VPN exit: no location in the City database. */
  vpn: {
    ip: '1.2.0.1',
    prefix: '1.2.0.0/24',
    anonymizer: true,
    hosting: false,
    carrierNat: false,
    anonymizerKinds: ['vpn'],
  },
  /** A Tor exit node. */
  tor: {
    ip: '65.0.0.1',
    prefix: '65.0.0.0/24',
    anonymizer: true,
    hosting: false,
    carrierNat: false,
    anonymizerKinds: ['tor'],
  },
  /** A hosting provider (data centre), not an anonymizer service as such. */
  hosting: {
    ip: '71.160.223.1',
    prefix: '71.160.223.0/24',
    anonymizer: false,
    hosting: true,
    carrierNat: false,
    anonymizerKinds: ['hosting'],
  },
  /** A mobile carrier's NAT (Cellular) in the US, located to within 1000 km. */
  carrier: {
    ip: '149.101.100.1',
    prefix: '149.101.100.0/24',
    country: 'US',
    latitude: 37.751,
    longitude: -97.822,
    accuracyKm: 1000,
    asn: 6167,
    asOrg: 'CELLCO-PART',
    anonymizer: false,
    hosting: false,
    carrierNat: true,
    anonymizerKinds: [],
  },
} satisfies Record<string, Geo>;
export const GEO: Record<keyof typeof geos, Geo> = geos;

/** Another address in the same network and place (e.g. a new DHCP lease). */
export function sameNetwork(geo: Geo, lastOctet: number): Geo {
  return { ...geo, ip: geo.ip.replace(/\.\d+$/, `.${lastOctet}`) };
}

// ---------------------------------------------------------------------------------------------
// Events, one builder per family. Defaults: account "acct-1", time T0, residential Milton.

let seq = 0;
const nextId = (p: string) => `${p}-${(++seq).toString().padStart(4, '0')}`;

interface Common {
  eventId?: string;
  accountId?: string;
  at?: number;
  /** null = no IP on the event (or one the databases know nothing about). */
  geo?: Geo | null;
}

export function login(
  o: Common & {
    outcome?: LoginEvent['outcome'];
    deviceId?: string | null;
    sessionId?: string | null;
  } = {},
): Extract<EnrichedEvent, { family: 'login' }> {
  const geo = o.geo === undefined ? GEO.milton : o.geo;
  const eventId = o.eventId ?? nextId('login');
  return {
    family: 'login',
    event: {
      eventId,
      accountId: o.accountId ?? 'acct-1',
      occurredAt: o.at ?? T0,
      outcome: o.outcome ?? 'SUCCESS',
      ip: geo?.ip ?? '192.0.2.10',
      deviceId: o.deviceId === undefined ? 'dev-laptop' : o.deviceId,
      sessionId: o.sessionId === undefined ? `sess-${eventId}` : o.sessionId,
    },
    geo,
  };
}

export function ipObservation(
  o: Common & Partial<Pick<IpObservationEvent, 'source' | 'deviceId' | 'sessionId'>> = {},
): Extract<EnrichedEvent, { family: 'ip' }> {
  const geo = o.geo === undefined ? GEO.milton : o.geo;
  return {
    family: 'ip',
    event: {
      eventId: o.eventId ?? nextId('ip'),
      accountId: o.accountId ?? 'acct-1',
      occurredAt: o.at ?? T0,
      ip: geo?.ip ?? '192.0.2.10',
      source: o.source ?? 'web',
      deviceId: o.deviceId === undefined ? 'dev-laptop' : o.deviceId,
      sessionId: o.sessionId === undefined ? null : o.sessionId,
    },
    geo,
  };
}

export function payment(
  o: Common &
    Partial<
      Pick<PaymentMethodEvent, 'action' | 'methodId' | 'methodType' | 'instrumentFingerprint' | 'deviceId'>
    > = {},
): Extract<EnrichedEvent, { family: 'payment' }> {
  const geo = o.geo === undefined ? GEO.milton : o.geo;
  const eventId = o.eventId ?? nextId('pay');
  return {
    family: 'payment',
    event: {
      eventId,
      accountId: o.accountId ?? 'acct-1',
      occurredAt: o.at ?? T0,
      action: o.action ?? 'ADDED',
      methodId: o.methodId ?? `pm-${eventId}`,
      methodType: o.methodType ?? 'CARD',
      instrumentFingerprint: o.instrumentFingerprint ?? 'fp-4242',
      ip: geo?.ip ?? null,
      deviceId: o.deviceId === undefined ? 'dev-laptop' : o.deviceId,
    },
    geo,
  };
}

export function contract(
  o: Common &
    Partial<
      Pick<
        ContractEvent,
        | 'contractId'
        | 'clientAccountId'
        | 'freelancerAccountId'
        | 'action'
        | 'amount'
        | 'currency'
        | 'rating'
        | 'disputeReason'
        | 'deviceId'
      >
    > = {},
): Extract<EnrichedEvent, { family: 'contract' }> {
  const geo = o.geo === undefined ? GEO.milton : o.geo;
  const freelancer = o.freelancerAccountId ?? 'free-1';
  const action = o.action ?? 'STARTED';
  return {
    family: 'contract',
    event: {
      eventId: o.eventId ?? nextId('ctr'),
      // the side that acted; disputes and payments come from the client
      accountId: o.accountId ?? freelancer,
      occurredAt: o.at ?? T0,
      contractId: o.contractId ?? 'contract-1',
      clientAccountId: o.clientAccountId ?? 'client-1',
      freelancerAccountId: freelancer,
      action,
      amount: o.amount === undefined ? (action === 'MILESTONE_PAID' ? 500 : null) : o.amount,
      currency: o.currency === undefined ? (action === 'MILESTONE_PAID' ? 'USD' : null) : o.currency,
      rating: o.rating === undefined ? null : o.rating,
      disputeReason: o.disputeReason === undefined ? null : o.disputeReason,
      ip: geo?.ip ?? null,
      deviceId: o.deviceId === undefined ? 'dev-laptop' : o.deviceId,
    },
    geo,
  };
}

export function account(
  o: Common &
    Partial<
      Pick<
        AccountEvent,
        | 'action'
        | 'accountType'
        | 'lifetimeCompletedContracts'
        | 'lifetimePaidHours'
        | 'lifetimeEarnings'
        | 'deviceId'
      >
    > = {},
): Extract<EnrichedEvent, { family: 'account' }> {
  const geo = o.geo === undefined ? GEO.milton : o.geo;
  return {
    family: 'account',
    event: {
      eventId: o.eventId ?? nextId('acc'),
      accountId: o.accountId ?? 'acct-1',
      occurredAt: o.at ?? T0,
      action: o.action ?? 'CREATED',
      accountType: o.accountType === undefined ? 'FREELANCER' : o.accountType,
      lifetimeCompletedContracts: o.lifetimeCompletedContracts ?? null,
      lifetimePaidHours: o.lifetimePaidHours ?? null,
      lifetimeEarnings: o.lifetimeEarnings ?? null,
      ip: geo?.ip ?? null,
      deviceId: o.deviceId === undefined ? null : o.deviceId,
    },
    geo,
  };
}

/** The login record the login processor writes for a successful login (impossible travel reads it). */
export function loginRecordOf(e: Extract<EnrichedEvent, { family: 'login' }>): LoginRecord {
  for (const s of planEvent(e).subjects) for (const op of s.ops) if (op.op === 'login') return op.login;
  throw new Error(`${e.event.eventId} records no login (outcome ${e.event.outcome})`);
}

/** The open session the login processor starts for a login (concurrent sessions read it). */
export function sessionOf(e: Extract<EnrichedEvent, { family: 'login' }>): SessionRecord {
  for (const s of planEvent(e).subjects)
    for (const op of s.ops)
      if (op.op === 'sessionStart') {
        return {
          sessionId: op.sessionId,
          eventId: op.eventId,
          latitude: op.latitude,
          longitude: op.longitude,
          ...(op.accuracyKm !== undefined && { accuracyKm: op.accuracyKm }),
          startedAt: e.event.occurredAt,
        };
      }
  throw new Error(`${e.event.eventId} starts no session`);
}

// ---------------------------------------------------------------------------------------------
// Snapshots and views.

/**
 * Builds the snapshot the store would return for one account, question by question. The results
 * are keyed by queryKey() exactly as the engine asks them, so a signal that reads a window it did
 * not ask for fails with MissingFeatureError, as it would in the pipeline.
 */
export class SnapshotBuilder {
  private readonly results = new Map<
    string,
    CountResult | DistinctResult | SessionRecord[] | ContractRecord[]
  >();
  private readonly seen = new Map<string, { last?: number; first?: number }>();
  private ctx: AccountContext = {};
  private last?: LoginRecord;
  private previous?: LoginRecord;
  private obs: StoredObservation[] = [];
  private readonly flags = new Map<string, FlagState>();
  private readonly cleared = new Map<string, number>();

  constructor(
    readonly accountId = 'acct-1',
    private asOfMs = T0,
  ) {}

  at(asOf: number): this {
    this.asOfMs = asOf;
    return this;
  }

  private put(q: AccountQuery, r: CountResult | DistinctResult | SessionRecord[] | ContractRecord[]): this {
    this.results.set(queryKey(q), r);
    return this;
  }

  /**
   * Events of a kind in (asOf - window, asOf]; ids newest first. n defaults to ids.length, and so
   * does the maxIds the question is asked with.
   */
  count(kind: EventKind, windowMs: number, ids: string[], n = ids.length, maxIds = ids.length): this {
    return this.put({ q: 'count', kind, from: -windowMs, to: 0, maxIds }, { n, ids });
  }

  /** Events of a kind in (asOf - 1, asOf + window]: recorded before this (earlier) event arrived. */
  countAfter(kind: EventKind, windowMs: number, ids: string[], n = ids.length): this {
    return this.put({ q: 'count', kind, from: -1, to: windowMs, maxIds: ids.length }, { n, ids });
  }

  /** Distinct values of a kind seen after asOf - window, this event's own value included. */
  distinct(kind: ValueKind, windowMs: number, values: string[], n = values.length): this {
    return this.put({ q: 'distinct', kind, from: -windowMs, maxValues: values.length }, { n, values });
  }

  sessions(windowMs: number, sessions: SessionRecord[]): this {
    return this.put({ q: 'sessions', from: -windowMs }, sessions);
  }

  contracts(records: ContractRecord[]): this {
    return this.put({ q: 'contracts' }, records);
  }

  /**
   * When the value this event records under a novelty name ("country", "device") was last and
   * first seen before it. Leave both out for "never seen".
   */
  lastSeenBefore(name: string, seen: { last?: number; first?: number } = {}): this {
    this.seen.set(name, seen);
    return this;
  }

  context(ctx: AccountContext): this {
    this.ctx = { ...this.ctx, ...ctx };
    return this;
  }

  /** The account's latest and previous successful logins, as the store keeps them. */
  logins(last: LoginRecord | undefined, previous?: LoginRecord): this {
    this.last = last;
    this.previous = previous;
    return this;
  }

  observations(obs: StoredObservation[]): this {
    this.obs = obs;
    return this;
  }

  openFlag(queue: string, state: FlagState): this {
    this.flags.set(queue, state);
    return this;
  }

  clearedPattern(pattern: string, untilMs: number): this {
    this.cleared.set(pattern, untilMs);
    return this;
  }

  /**
   * The snapshot. With an event, lastSeenBefore follows the value ops the event's processor
   * plans for this account (so a VPN login, which records no country, has no country novelty);
   * without one, it follows the order the names were given.
   */
  build(event?: EnrichedEvent): { snapshot: AccountSnapshot; index: Map<string, number> } {
    let index: Map<string, number>;
    let lastSeen: { last?: number; first?: number }[];
    if (event) {
      const plan = planEvent(event).subjects.find((s) => s.accountId === this.accountId);
      if (!plan) throw new Error(`${event.event.eventId} plans nothing for ${this.accountId}`);
      index = noveltyIndex(plan.ops);
      for (const name of this.seen.keys()) {
        if (!index.has(name)) {
          throw new Error(`lastSeenBefore("${name}") given, but ${event.event.eventId} records no ${name}`);
        }
      }
      lastSeen = plan.ops.filter((op) => op.op === 'value').map(() => ({}));
      for (const [name, i] of index) lastSeen[i] = { ...this.seen.get(name) };
    } else {
      index = new Map([...this.seen.keys()].map((name, i) => [name, i]));
      lastSeen = [...this.seen.values()].map((s) => ({ ...s }));
    }
    const results = new Map(this.results);
    const snapshot: AccountSnapshot = {
      accountId: this.accountId,
      asOf: this.asOfMs,
      late: false,
      lastSeenBefore: lastSeen,
      answer: (q) => results.get(queryKey(q)),
      context: { ...this.ctx },
      ...(this.last && { lastLogin: this.last }),
      ...(this.previous && { previousLogin: this.previous }),
      observations: [...this.obs],
      openFlags: new Map(this.flags),
      clearedPatterns: new Map(this.cleared),
    };
    return { snapshot, index };
  }

  snapshot(event?: EnrichedEvent): AccountSnapshot {
    return this.build(event).snapshot;
  }

  /** `recent`: observations remembered after the snapshot was built (before this event). */
  view(event?: EnrichedEvent, recent: StoredObservation[] = []): AccountView {
    const { snapshot, index } = this.build(event);
    if (recent.length) snapshot.observations = mergeObservations(snapshot.observations, recent);
    return new AccountView(snapshot, index);
  }
}

export function snapshot(accountId = 'acct-1', asOf = T0): SnapshotBuilder {
  return new SnapshotBuilder(accountId, asOf);
}

/** A shared entity (IP, device, instrument) with the accounts seen on it, newest first. */
export function entity(type: EntityType, id: string, accounts: string[], capped = false): EntitySnapshot {
  return { type, id, accounts: { n: accounts.length, values: accounts }, capped };
}

/** The context a signal is evaluated in; the subject's view follows the event's processor plan. */
export function contextFor(
  event: EnrichedEvent,
  subject: SnapshotBuilder,
  o: {
    role?: SubjectRole;
    counterpart?: SnapshotBuilder;
    entities?: SignalContext['entities'];
    recent?: StoredObservation[];
  } = {},
): SignalContext {
  return {
    event,
    role: o.role ?? 'account',
    subject: subject.view(event, o.recent),
    entities: o.entities ?? {},
    ...(o.counterpart && { counterpart: o.counterpart.view(event) }),
  };
}

/** A remembered observation, as the engine stores a fired evaluation. */
export function observation(
  signalId: string,
  o: Partial<Omit<StoredObservation, 'signalId'>> = {},
): StoredObservation {
  return {
    signalId,
    family: o.family ?? signalId.split('.')[0]!,
    observedAt: o.observedAt ?? T0,
    eventId: o.eventId ?? `evt-${signalId}`,
    observed: o.observed ?? 1,
    threshold: o.threshold ?? 1,
    window: o.window ?? '1h',
    summary: o.summary ?? `${signalId} observed`,
    evidenceEventIds: o.evidenceEventIds ?? [o.eventId ?? `evt-${signalId}`],
  };
}

// ---------------------------------------------------------------------------------------------
// The shipped config.

let shipped: LoadedConfig | undefined;

/** config/default.yaml as shipped, untouched by the environment this test runs in. */
export function shippedConfig(): LoadedConfig {
  shipped ??= loadConfig({ env: {} });
  return shipped;
}

export function shippedPolicy(): Policy {
  return compilePolicy(shippedConfig());
}

/**
 * A signal's params from config/default.yaml, with the fields a test needs changed. Durations are
 * already milliseconds here (the loader has validated and converted them).
 */
export function paramsFor<P extends SignalBaseParams>(
  signal: SignalDefinition<P>,
  overrides: Partial<P> = {},
): P {
  return { ...(paramsOf(shippedConfig().config, signal) as unknown as P), ...overrides };
}
