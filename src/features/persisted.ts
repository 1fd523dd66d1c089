// The copy of an account's features kept in Redis: one Avro-encoded value per account, written once
// per batch by the owning instance and read back when an account is not in memory (a cold start,
// a rebalance, an evicted account, explain). Avro because it is compact (no field names, varint
// numbers) and the schema says exactly what is kept; times are stored relative to the account's
// watermark, so most are a few bytes. Entries are written in a fixed order: the same features give
// the same bytes, whatever order the events arrived in.
import avro from 'avsc';
import { AccountFeatures, type OpenSession, type SeenEvent } from './account-features.js';
import {
  CONTEXT_FIELDS,
  EVENT_KINDS,
  VALUE_KINDS,
  type ContextField,
  type ContractRecord,
  type EventKind,
  type FeatureLayout,
  type FlagState,
  type LoginRecord,
  type StoredObservation,
  type ValueKind,
} from './model.js';

/** Bumped when the layout below changes incompatibly; an unknown version is refused, not guessed. */
export const STATE_FORMAT = 1;

const optional = (type: unknown) => ({ type: ['null', type], default: null });
const timed = (name: string, fields: object[]) => ({ type: 'record', name, fields });

const OBSERVATION = {
  type: 'record',
  name: 'Observation',
  fields: [
    { name: 'signalId', type: 'string' },
    { name: 'family', type: 'string' },
    { name: 'observedAt', type: 'long' },
    { name: 'eventId', type: 'string' },
    { name: 'observed', type: 'double' },
    { name: 'threshold', type: 'double' },
    { name: 'window', type: 'string' },
    { name: 'summary', type: 'string' },
    { name: 'evidence', type: { type: 'array', items: 'string' } },
  ],
};

const LOGIN = {
  type: 'record',
  name: 'Login',
  fields: [
    { name: 'at', type: 'long' },
    { name: 'eventId', type: 'string' },
    { name: 'ip', type: 'string' },
    { name: 'country', ...optional('string') },
    { name: 'city', ...optional('string') },
    { name: 'latitude', ...optional('double') },
    { name: 'longitude', ...optional('double') },
    { name: 'accuracyKm', ...optional('double') },
    { name: 'deviceId', ...optional('string') },
    { name: 'anonymizer', type: 'boolean' },
    { name: 'hosting', type: 'boolean' },
  ],
};

const STAMP = timed('Stamp', [
  { name: 'key', type: 'string' },
  { name: 'at', type: 'long' },
]);

export const ACCOUNT_STATE_SCHEMA = {
  type: 'record',
  name: 'AccountState',
  namespace: 'fairflag.state',
  fields: [
    { name: 'format', type: 'int' },
    { name: 'watermark', type: 'long' },
    { name: 'familyWatermarks', type: { type: 'array', items: STAMP } },
    {
      name: 'events',
      type: {
        type: 'array',
        items: timed('EventSet', [
          { name: 'kind', type: 'string' },
          { name: 'items', type: { type: 'array', items: 'Stamp' } },
        ]),
      },
    },
    {
      name: 'values',
      type: {
        type: 'array',
        items: timed('ValueSet', [
          { name: 'kind', type: 'string' },
          { name: 'items', type: { type: 'array', items: 'Stamp' } },
        ]),
      },
    },
    { name: 'firstSeen', type: { type: 'array', items: 'Stamp' } },
    {
      name: 'sessions',
      type: {
        type: 'array',
        items: timed('Session', [
          { name: 'sessionId', type: 'string' },
          { name: 'startedAt', type: 'long' },
          { name: 'latitude', type: 'double' },
          { name: 'longitude', type: 'double' },
          { name: 'eventId', type: 'string' },
        ]),
      },
    },
    { name: 'logouts', type: { type: 'array', items: 'Stamp' } },
    {
      name: 'context',
      type: {
        type: 'array',
        items: timed('ContextValue', [
          { name: 'field', type: 'string' },
          { name: 'at', type: 'long' },
          { name: 'value', type: 'string' },
        ]),
      },
    },
    { name: 'lastLogin', ...optional(LOGIN) },
    { name: 'previousLogin', ...optional('Login') },
    {
      name: 'contracts',
      type: {
        type: 'array',
        items: timed('Contract', [
          { name: 'contractId', type: 'string' },
          { name: 'role', ...optional('string') },
          { name: 'counterpart', ...optional('string') },
          { name: 'startedAt', ...optional('long') },
          { name: 'endedAt', ...optional('long') },
          { name: 'rating', ...optional('int') },
          { name: 'firstPaidAt', ...optional('long') },
          { name: 'lastPaidAt', ...optional('long') },
          { name: 'disputedAt', ...optional('long') },
          { name: 'endEventId', ...optional('string') },
        ]),
      },
    },
    { name: 'observations', type: { type: 'array', items: OBSERVATION } },
    {
      name: 'openFlags',
      type: {
        type: 'array',
        items: timed('OpenFlag', [
          { name: 'queue', type: 'string' },
          { name: 'flagId', type: 'string' },
          { name: 'revision', type: 'int' },
          { name: 'severity', type: 'string' },
          { name: 'score', type: 'double' },
          { name: 'createdAt', type: 'long' },
          { name: 'updatedAt', type: 'long' },
          { name: 'signals', type: { type: 'array', items: 'Observation' } },
        ]),
      },
    },
    { name: 'flagGenerations', type: { type: 'array', items: 'Stamp' } },
    { name: 'clearedPatterns', type: { type: 'array', items: 'Stamp' } },
    { name: 'capsReached', type: { type: 'array', items: 'Stamp' } },
    {
      name: 'seenEvents',
      type: {
        type: 'array',
        items: timed('SeenEvent', [
          { name: 'eventId', type: 'string' },
          { name: 'at', type: 'long' },
          { name: 'family', type: 'string' },
          { name: 'digest', type: 'string' },
        ]),
      },
    },
  ],
};

const TYPE = avro.Type.forSchema(ACCOUNT_STATE_SCHEMA as avro.Schema);

export class PersistedStateError extends Error {
  constructor(accountId: string, detail: string) {
    super(`stored features of ${accountId} are unreadable: ${detail}`);
    this.name = 'PersistedStateError';
  }
}

type Stamp = { key: string; at: number };
interface Obs {
  signalId: string;
  family: string;
  observedAt: number;
  eventId: string;
  observed: number;
  threshold: number;
  window: string;
  summary: string;
  evidence: string[];
}

const byKey = (a: Stamp, b: Stamp) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const sorted = <T>(m: ReadonlyMap<string, T>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
const KIND_OF_EVENT_CODE = new Map(
  Object.entries(EVENT_KINDS).map(([k, c]) => [c as string, k as EventKind]),
);
const KIND_OF_VALUE_CODE = new Map<string, ValueKind | 'contract'>([
  ...Object.entries(VALUE_KINDS).map(([k, c]): [string, ValueKind] => [c, k as ValueKind]),
  ['k', 'contract'],
]);
const VALUE_CODE = (k: ValueKind | 'contract') => (k === 'contract' ? 'k' : VALUE_KINDS[k]);
const FIELD_OF_CODE = new Map(
  Object.entries(CONTEXT_FIELDS).map(([f, c]) => [c as string, f as ContextField]),
);

/** Encodes an account's features; times relative to the watermark (`base`). */
export function encodeAccount(a: AccountFeatures): Buffer {
  const base = a.watermark;
  const rel = (t: number) => t - base;
  const stamps = (m: ReadonlyMap<string, number>, relative = true): Stamp[] =>
    sorted(m).map(([key, at]) => ({ key, at: relative ? rel(at) : at }));
  const obs = (o: StoredObservation): Obs => ({
    signalId: o.signalId,
    family: o.family,
    observedAt: rel(o.observedAt),
    eventId: o.eventId,
    observed: o.observed,
    threshold: o.threshold,
    window: o.window,
    summary: o.summary,
    evidence: o.evidenceEventIds,
  });
  const login = (l: LoginRecord | undefined) =>
    l && {
      at: rel(l.at),
      eventId: l.eventId,
      ip: l.ip,
      country: l.country ?? null,
      city: l.city ?? null,
      latitude: l.latitude ?? null,
      longitude: l.longitude ?? null,
      accuracyKm: l.accuracyKm ?? null,
      deviceId: l.deviceId ?? null,
      anonymizer: l.anonymizer,
      hosting: l.hosting,
    };
  const optRel = (t: number | undefined) => (t === undefined ? null : rel(t));
  return TYPE.toBuffer({
    format: STATE_FORMAT,
    watermark: base,
    familyWatermarks: stamps(a.familyWatermarks),
    events: [...a.events]
      .map(([kind, set]) => ({ kind: EVENT_KINDS[kind], items: stamps(set) }))
      .sort((x, y) => (x.kind < y.kind ? -1 : 1)),
    values: [...a.values]
      .map(([kind, m]) => ({ kind: VALUE_CODE(kind), items: stamps(m) }))
      .sort((x, y) => (x.kind < y.kind ? -1 : 1)),
    firstSeen: stamps(a.firstSeen),
    sessions: sorted(a.sessions).map(([sessionId, s]: [string, OpenSession]) => ({
      sessionId,
      startedAt: rel(s.startedAt),
      latitude: s.latitude,
      longitude: s.longitude,
      eventId: s.eventId,
    })),
    logouts: stamps(a.logouts),
    context: [...a.contextStamps]
      .map(([field, at]) => ({
        field: CONTEXT_FIELDS[field],
        at: rel(at),
        value: a.contextValue(field) ?? '',
      }))
      .sort((x, y) => (x.field < y.field ? -1 : 1)),
    lastLogin: login(a.lastLogin) ?? null,
    previousLogin: login(a.previousLogin) ?? null,
    contracts: sorted(a.contracts).map(([, c]: [string, ContractRecord]) => ({
      contractId: c.contractId,
      role: c.role ?? null,
      counterpart: c.counterpart ?? null,
      startedAt: optRel(c.startedAt),
      endedAt: optRel(c.endedAt),
      rating: c.rating ?? null,
      firstPaidAt: optRel(c.firstPaidAt),
      lastPaidAt: optRel(c.lastPaidAt),
      disputedAt: optRel(c.disputedAt),
      endEventId: c.endEventId ?? null,
    })),
    observations: sorted(a.observations).map(([, o]) => obs(o)),
    openFlags: sorted(a.openFlags).map(([queue, f]: [string, FlagState]) => ({
      queue,
      flagId: f.flagId,
      revision: f.revision,
      severity: f.severity,
      score: f.score,
      createdAt: rel(f.createdAt),
      updatedAt: rel(f.updatedAt),
      signals: f.signals.map(obs),
    })),
    flagGenerations: stamps(a.flagGenerations, false),
    // until when a cleared pattern mitigates: an absolute time, like the decision it came from
    clearedPatterns: stamps(a.clearedPatterns, false),
    capsReached: stamps(a.capsReached),
    seenEvents: sorted(a.seenEvents).map(([eventId, s]: [string, SeenEvent]) => ({
      eventId,
      at: rel(s.at),
      family: s.family,
      digest: s.digest,
    })),
  });
}

interface Decoded {
  format: number;
  watermark: number;
  familyWatermarks: Stamp[];
  events: { kind: string; items: Stamp[] }[];
  values: { kind: string; items: Stamp[] }[];
  firstSeen: Stamp[];
  sessions: { sessionId: string; startedAt: number; latitude: number; longitude: number; eventId: string }[];
  logouts: Stamp[];
  context: { field: string; at: number; value: string }[];
  lastLogin: (Record<string, unknown> & { at: number }) | null;
  previousLogin: (Record<string, unknown> & { at: number }) | null;
  contracts: (Record<string, unknown> & { contractId: string })[];
  observations: Obs[];
  openFlags: {
    queue: string;
    flagId: string;
    revision: number;
    severity: string;
    score: number;
    createdAt: number;
    updatedAt: number;
    signals: Obs[];
  }[];
  flagGenerations: Stamp[];
  clearedPatterns: Stamp[];
  capsReached: Stamp[];
  seenEvents: { eventId: string; at: number; family: string; digest: string }[];
}

/** The stored record as plain data (times relative to its watermark), for diffs and debugging. */
export function describeAccount(bytes: Buffer): Record<string, unknown> {
  return TYPE.fromBuffer(bytes) as Record<string, unknown>;
}

/** Decodes what encodeAccount wrote; the result answers every question exactly as the original. */
export function decodeAccount(accountId: string, bytes: Buffer, layout: FeatureLayout): AccountFeatures {
  let d: Decoded;
  try {
    d = TYPE.fromBuffer(bytes) as Decoded;
  } catch (err) {
    throw new PersistedStateError(accountId, (err as Error).message);
  }
  if (d.format !== STATE_FORMAT)
    throw new PersistedStateError(accountId, `format ${d.format}, this version reads ${STATE_FORMAT}`);
  const base = d.watermark;
  const abs = (t: number) => t + base;
  const a = new AccountFeatures(accountId, layout);
  a.watermark = base;
  const fill = (m: Map<string, number>, items: Stamp[], relative = true) => {
    for (const s of items.sort(byKey)) m.set(s.key, relative ? abs(s.at) : s.at);
  };
  fill(a.familyWatermarks, d.familyWatermarks);
  for (const e of d.events) {
    const kind = KIND_OF_EVENT_CODE.get(e.kind);
    if (!kind) throw new PersistedStateError(accountId, `unknown event kind "${e.kind}"`);
    const set = new Map<string, number>();
    fill(set, e.items);
    a.events.set(kind, set);
  }
  for (const v of d.values) {
    const kind = KIND_OF_VALUE_CODE.get(v.kind);
    if (!kind) throw new PersistedStateError(accountId, `unknown value kind "${v.kind}"`);
    const m = new Map<string, number>();
    fill(m, v.items);
    a.values.set(kind, m);
  }
  fill(a.firstSeen, d.firstSeen);
  for (const s of d.sessions)
    a.sessions.set(s.sessionId, {
      startedAt: abs(s.startedAt),
      latitude: s.latitude,
      longitude: s.longitude,
      eventId: s.eventId,
    });
  fill(a.logouts, d.logouts);
  for (const c of d.context) {
    const field = FIELD_OF_CODE.get(c.field);
    if (!field) throw new PersistedStateError(accountId, `unknown context field "${c.field}"`);
    a.setContext(field, c.value, abs(c.at));
  }
  a.lastLogin = login(d.lastLogin, abs);
  a.previousLogin = login(d.previousLogin, abs);
  for (const c of d.contracts) {
    const rec: Record<string, unknown> = { contractId: c.contractId };
    for (const [k, v] of Object.entries(c)) {
      if (v === null || k === 'contractId') continue;
      rec[k] = k.endsWith('At') ? abs(v as number) : v;
    }
    a.contracts.set(c.contractId, rec as unknown as ContractRecord);
  }
  const obs = (o: Obs): StoredObservation => ({
    signalId: o.signalId,
    family: o.family,
    observedAt: abs(o.observedAt),
    eventId: o.eventId,
    observed: o.observed,
    threshold: o.threshold,
    window: o.window,
    summary: o.summary,
    evidenceEventIds: o.evidence,
  });
  for (const o of d.observations) a.observations.set(o.signalId, obs(o));
  for (const f of d.openFlags)
    a.openFlags.set(f.queue, {
      flagId: f.flagId,
      revision: f.revision,
      severity: f.severity,
      score: f.score,
      createdAt: abs(f.createdAt),
      updatedAt: abs(f.updatedAt),
      signals: f.signals.map(obs),
    });
  fill(a.flagGenerations, d.flagGenerations, false);
  fill(a.clearedPatterns, d.clearedPatterns, false);
  fill(a.capsReached, d.capsReached);
  for (const s of d.seenEvents)
    a.seenEvents.set(s.eventId, { at: abs(s.at), family: s.family, digest: s.digest });
  return a;
}

function login(
  l: (Record<string, unknown> & { at: number }) | null,
  abs: (t: number) => number,
): LoginRecord | undefined {
  if (!l) return undefined;
  const rec: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(l)) if (v !== null) rec[k] = v;
  rec['at'] = abs(l.at);
  return rec as unknown as LoginRecord;
}
