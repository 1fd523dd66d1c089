// The Redis feature store: one server-side script per entity per event, keys under one hash tag
// per entity, so the same code runs on a single Redis and on a Redis Cluster.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import {
  ACCOUNT_MEMORY,
  CONTEXT_FIELDS,
  COUNTED_ONLY,
  ENTITY_TYPES,
  EVENT_KINDS,
  VALUE_KINDS,
  queryKey,
  type AccountContext,
  type AccountMemory,
  type AccountOp,
  type AccountQuery,
  type AccountSnapshot,
  type ContractRecord,
  type EntityQuery,
  type EntitySnapshot,
  type EntityType,
  type EventKind,
  type FlagState,
  type LoginRecord,
  type SessionRecord,
  type StoredObservation,
} from './model.js';

const ACCOUNT_LUA = readFileSync(new URL('./account.lua', import.meta.url), 'utf8');
const ENTITY_LUA = readFileSync(new URL('./entity.lua', import.meta.url), 'utf8');

const EVENT_KIND_CODES = Object.values(EVENT_KINDS).join('');
/** h, v, s, c, n and one sorted set per event kind. */
const ACCOUNT_KEY_COUNT = 5 + EVENT_KIND_CODES.length;
const CODE_TO_EVENT_KIND = new Map<string, EventKind>(
  Object.entries(EVENT_KINDS).map(([k, c]) => [c, k as EventKind]),
);

/** Retention and caps, derived from the config's windows (see layoutFromConfig). */
export interface StoreLayout {
  keyPrefix: string;
  allowedLatenessMs: number;
  /** How long each event kind is kept: its longest window plus lateness. */
  eventRetentionMs: Record<EventKind, number>;
  valueRetentionMs: number;
  sessionRetentionMs: number;
  entityRetentionMs: Record<EntityType, number>;
  caps: { eventsPerKind: number; values: number; sessions: number; accountsPerEntity: number };
}

type RedisLike = Redis | Cluster;
type ScriptRunner = (...keysThenArgs: string[]) => Promise<string>;

export class FeatureStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FeatureStoreError';
  }
}

export class FeatureStore {
  private readonly runAccount: ScriptRunner;
  private readonly runEntity: ScriptRunner;
  /** Redis commands sent, for the round-trips-per-event figure. */
  commandsSent = 0;
  /** The layout's part of every account request, serialised once (it is most of the bytes). */
  private accountLayoutJson: string;

  constructor(
    readonly redis: RedisLike,
    private layout: StoreLayout,
  ) {
    this.accountLayoutJson = accountLayoutJson(layout);
    // defineCommand sends EVALSHA and falls back to EVAL once per connection when the script
    // is not cached (after a restart or failover).
    if (!('fairflagAccount' in redis)) {
      // A fixed key count makes the first argument a key: ioredis's cluster auto-pipelining
      // routes a command by its first key, and would route by "13" if the count came first.
      redis.defineCommand('fairflagAccount', { lua: ACCOUNT_LUA, numberOfKeys: ACCOUNT_KEY_COUNT });
      redis.defineCommand('fairflagEntity', { lua: ENTITY_LUA, numberOfKeys: 2 });
    }
    const r = redis as unknown as Record<string, ScriptRunner>;
    this.runAccount = (...a) => r['fairflagAccount']!.call(redis, ...a);
    this.runEntity = (...a) => r['fairflagEntity']!.call(redis, ...a);
  }

  setLayout(layout: StoreLayout): void {
    this.layout = layout;
    this.accountLayoutJson = accountLayoutJson(layout);
  }

  accountKeys(accountId: string): string[] {
    const base = `${this.layout.keyPrefix}:{a:${accountId}}`;
    return [
      `${base}:h`,
      `${base}:v`,
      `${base}:s`,
      `${base}:c`,
      `${base}:n`,
      ...[...EVENT_KIND_CODES].map((c) => `${base}:e:${c}`),
    ];
  }

  entityKeys(type: EntityType, id: string): string[] {
    const base = `${this.layout.keyPrefix}:{${ENTITY_TYPES[type]}:${id}}`;
    return [`${base}:a`, `${base}:m`];
  }

  /**
   * Applies ops and answers queries for one account in one script call. `at` is the event time
   * windows are measured from; a negative `at` means "as of the account's latest event".
   */
  async applyAccount(
    accountId: string,
    at: number,
    ops: AccountOp[],
    queries: AccountQuery[],
    readOnly = false,
    family?: string,
    /** Which parts of the account's memory to send back; all when not given. */
    memory?: AccountMemory[],
  ): Promise<AccountSnapshot> {
    for (const q of queries) {
      if (q.q === 'count' && q.maxIds > 0 && COUNTED_ONLY.has(q.kind)) {
        throw new FeatureStoreError(`${q.kind} events are only counted: their ids are not kept`);
      }
    }
    const req = JSON.stringify({
      ts: at,
      ro: readOnly ? 1 : 0,
      w: ops.some((o) => o.op === 'event' || o.op === 'value' || o.op === 'sessionStart') ? 1 : 0,
      ...(family && { wf: `wm:${family}` }),
      ...(memory && { hf: memory.flatMap((m) => ACCOUNT_MEMORY[m]) }),
      ops: ops.map(encodeOp),
      q: queries.map(encodeQuery),
    });
    const keys = this.accountKeys(accountId);
    this.commandsSent++;
    let raw: string;
    try {
      raw = await this.runAccount(...keys, `{${this.accountLayoutJson},${req.slice(1)}`);
    } catch (err) {
      throw new FeatureStoreError(`account script failed for ${accountId}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return decodeAccount(accountId, queries, raw);
  }

  /** Running counts of review outcomes per signal (which signals produce false positives). */
  async countOutcome(signalIds: string[], outcome: string): Promise<void> {
    const key = `${this.layout.keyPrefix}:{stats}:outcomes`;
    this.commandsSent++;
    await Promise.all(signalIds.map((id) => this.redis.hincrby(key, `${id}|${outcome}`, 1)));
  }

  async outcomeCounts(): Promise<Map<string, Record<string, number>>> {
    const raw = await this.redis.hgetall(`${this.layout.keyPrefix}:{stats}:outcomes`);
    const out = new Map<string, Record<string, number>>();
    for (const [field, n] of Object.entries(raw)) {
      const [signal = '', outcome = ''] = field.split('|');
      out.set(signal, { ...out.get(signal), [outcome]: Number(n) });
    }
    return out;
  }

  /** Every key of this store's namespace (all masters of a cluster). */
  async keys(): Promise<string[]> {
    const nodes =
      'nodes' in this.redis && typeof this.redis.nodes === 'function'
        ? this.redis.nodes('master')
        : [this.redis];
    const found: string[] = [];
    for (const node of nodes as Redis[]) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', `${this.layout.keyPrefix}:*`, 'COUNT', 1000);
        cursor = next;
        found.push(...batch);
      } while (cursor !== '0');
    }
    return found;
  }

  /** Removes the whole namespace: replay's isolated keys when the run ends. */
  async dropNamespace(): Promise<number> {
    const keys = await this.keys();
    // one key per call: in a cluster the keys live in many slots
    await Promise.all(keys.map((k) => this.redis.unlink(k)));
    return keys.length;
  }

  async applyEntity(
    type: EntityType,
    id: string,
    at: number,
    addAccount: string | undefined,
    query: EntityQuery,
    readOnly = false,
  ): Promise<EntitySnapshot> {
    const retention = this.layout.entityRetentionMs[type];
    const req = {
      ts: at,
      ro: readOnly ? 1 : 0,
      ttl: retention,
      ret: retention,
      cap: this.layout.caps.accountsPerEntity,
      add: addAccount,
      from: query.from,
      max: query.maxIds,
    };
    const keys = this.entityKeys(type, id);
    this.commandsSent++;
    let raw: string;
    try {
      raw = await this.runEntity(...keys, JSON.stringify(req));
    } catch (err) {
      throw new FeatureStoreError(`entity script failed for ${type} ${id}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const r = JSON.parse(raw) as { n: number; ids: string[] | object; capped: number };
    return { type, id, accounts: { n: r.n, values: asArray<string>(r.ids) }, capped: r.capped === 1 };
  }
}

function accountLayoutJson(l: StoreLayout): string {
  const ret: Record<string, number> = { v: l.valueRetentionMs, s: l.sessionRetentionMs };
  for (const [kind, code] of Object.entries(EVENT_KINDS)) ret[code] = l.eventRetentionMs[kind as EventKind];
  const json = JSON.stringify({
    lat: l.allowedLatenessMs,
    ttl: Math.max(...Object.values(ret)),
    ret,
    cap: { e: l.caps.eventsPerKind, v: l.caps.values, s: l.caps.sessions },
    ek: EVENT_KIND_CODES,
  });
  return json.slice(1, -1);
}

// cjson encodes an empty Lua table as {}: read it back as an empty list.
function asArray<T>(v: unknown): T[] {
  return Array.isArray(v) ? (v as T[]) : [];
}

function encodeOp(op: AccountOp): unknown[] {
  switch (op.op) {
    case 'event':
      return ['E', EVENT_KINDS[op.kind], COUNTED_ONLY.has(op.kind) ? digest(op.eventId) : op.eventId];
    case 'value':
      return ['V', VALUE_KINDS[op.kind], op.value, op.noveltyName ? 1 : 0];
    case 'sessionStart':
      return ['S', op.sessionId, `${op.latitude}|${op.longitude}|${op.eventId}`];
    case 'sessionEnd':
      return ['SX', op.sessionId];
    case 'context':
      return ['X', CONTEXT_FIELDS[op.field], op.value];
    case 'login':
      return ['L', encodeLogin(op.login)];
    case 'contract':
      return ['K', op.contractId, encodeContractPatch(op.patch)];
    case 'observations':
      return [
        'O',
        op.observations.map((o) => [o.signalId, o.observedAt, JSON.stringify(o), o.evidenceEventIds]),

        op.correlationWindowMs,
      ];
    case 'flagClaim':
      return ['FCLAIM', op.queue, op.state.flagId, JSON.stringify(op.state), op.expectedRevision];
    case 'flagState':
      return ['FS', op.queue, op.state.flagId, JSON.stringify(op.state), op.state.revision];

    case 'flagClose':
      return ['FC', op.queue, op.flagId];
    case 'clearedPattern':
      return ['CL', op.pattern, op.untilMs];
  }
}

/** 64 bits of the id's SHA-1: a collision among one account's few hundred events is out of reach. */
function digest(id: string): string {
  return createHash('sha1').update(id).digest('base64url').slice(0, 11);
}

function encodeQuery(q: AccountQuery): unknown[] {
  switch (q.q) {
    case 'count':
      return ['C', EVENT_KINDS[q.kind], q.from, q.to, q.maxIds];
    case 'distinct':
      return ['D', VALUE_KINDS[q.kind], q.from, q.maxValues];
    case 'sessions':
      return ['SS', q.from];
    case 'contracts':
      return ['K'];
  }
}

// Short field names keep the two login records in every account's hash small (they are most of
// it). The record's time is the stamp the script writes in front of it, and false flags are left out.
const LOGIN_FIELDS = {
  eventId: 'e',
  ip: 'i',
  country: 'c',
  city: 'y',
  latitude: 'la',
  longitude: 'lo',
  accuracyKm: 'r',
  deviceId: 'd',
  anonymizer: 'a',
  hosting: 'h',
} as const;

function encodeLogin(login: LoginRecord): string {
  const out: Record<string, unknown> = {};
  for (const [k, short] of Object.entries(LOGIN_FIELDS)) {
    const v = login[k as keyof typeof LOGIN_FIELDS];
    if (v !== undefined && v !== false) out[short] = v === true ? 1 : v;
  }
  return JSON.stringify(out);
}

function decodeLogin(stamp: number, json: string): LoginRecord {
  const raw = JSON.parse(json) as Record<string, unknown>;
  // a record written before the short names
  if ('eventId' in raw) return raw as unknown as LoginRecord;
  const rec: Record<string, unknown> = { at: stamp, anonymizer: raw['a'] === 1, hosting: raw['h'] === 1 };
  for (const [k, short] of Object.entries(LOGIN_FIELDS)) {
    if (k !== 'anonymizer' && k !== 'hosting' && raw[short] !== undefined) rec[k] = raw[short];
  }
  return rec as unknown as LoginRecord;
}

// Short field names keep contract records small in Redis.
const CONTRACT_FIELDS = {
  role: 'r',
  counterpart: 'cp',
  startedAt: 's',
  endedAt: 'e',
  rating: 'rt',
  firstPaidAt: 'fp',
  lastPaidAt: 'lp',
  disputedAt: 'd',
  endEventId: 'ee',
} as const;

function encodeContractPatch(p: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) {
    if (v !== undefined) out[CONTRACT_FIELDS[k as keyof typeof CONTRACT_FIELDS]] = v;
  }
  return out;
}

function decodeContract(contractId: string, json: string): ContractRecord {
  const raw = JSON.parse(json) as Record<string, unknown>;
  const rec: Record<string, unknown> = { contractId };
  for (const [k, short] of Object.entries(CONTRACT_FIELDS)) if (raw[short] !== undefined) rec[k] = raw[short];
  return rec as unknown as ContractRecord;
}

/** Splits "<stamp>|<rest>" as written by the script. */
function splitStamped(v: string): [number, string] {
  const i = v.indexOf('|');
  return [Number(v.slice(0, i)), v.slice(i + 1)];
}

function decodeAccount(accountId: string, queries: AccountQuery[], raw: string): AccountSnapshot {
  const r = JSON.parse(raw) as {
    ts: number;
    late: number;
    wm: number;
    ls: unknown;
    a: unknown;
    h: unknown;
    r: unknown;
  };
  const answers = asArray<unknown>(r.a);
  const results: AccountSnapshot['results'] = new Map();
  queries.forEach((q, i) => {
    const a = answers[i];
    switch (q.q) {
      case 'count':
      case 'distinct': {
        const [n, items] = a as [number, unknown];
        const list = asArray<string>(items);
        results.set(queryKey(q), q.q === 'count' ? { n, ids: list } : { n, values: list });
        break;
      }
      case 'sessions': {
        const flat = asArray<string>(a);
        const sessions: SessionRecord[] = [];
        for (let j = 0; j < flat.length; j += 2) {
          const [sessionId = '', lat = '0', lon = '0', eventId = ''] = flat[j]!.split('|');
          sessions.push({
            sessionId,
            eventId,
            latitude: Number(lat),
            longitude: Number(lon),
            startedAt: Number(flat[j + 1]),
          });
        }
        results.set(queryKey(q), sessions);
        break;
      }
      case 'contracts': {
        const flat = asArray<string>(a);
        const contracts: ContractRecord[] = [];
        for (let j = 0; j < flat.length; j += 2) contracts.push(decodeContract(flat[j]!, flat[j + 1]!));
        results.set(queryKey(q), contracts);
        break;
      }
    }
  });

  const snapshot: AccountSnapshot = {
    accountId,
    asOf: r.ts,
    late: r.late === 1,
    watermark: r.wm,
    lastSeenBefore: asArray<[number, number]>(r.ls).map(([last, first]) => ({
      ...(last >= 0 && { last }),
      ...(first >= 0 && { first }),
    })),
    results,
    context: {},
    observations: [],
    openFlags: new Map(),
    flagGenerations: new Map(),
    clearedPatterns: new Map(),
    capsReached: new Map(),
    opResults: asArray<number>(r.r),
  };
  const h = asArray<string>(r.h);
  for (let j = 0; j < h.length; j += 2) readHashField(snapshot, h[j]!, h[j + 1]!);
  return snapshot;
}

function readHashField(s: AccountSnapshot, field: string, value: string): void {
  const ctx: AccountContext = s.context;
  if (field === 'll' || field === 'lp') {
    const rec = decodeLogin(...splitStamped(value));
    if (field === 'll') s.lastLogin = rec;
    else s.previousLogin = rec;
  } else if (field === CONTEXT_FIELDS.createdAt) {
    ctx.createdAt = Number(splitStamped(value)[1]);
  } else if (field === CONTEXT_FIELDS.accountType) {
    ctx.accountType = splitStamped(value)[1];
  } else if (field === CONTEXT_FIELDS.identity) {
    const [stamp, v] = splitStamped(value);
    ctx.identityVerified = v === '1';
    ctx.identityChangedAt = stamp;
  } else if (field === CONTEXT_FIELDS.stats) {
    // "contracts|hours|earnings", an empty part when the platform did not say
    const [contracts, hours, earnings] = splitStamped(value)[1]
      .split('|')
      .map((p) => (p === '' ? undefined : Number(p)));
    if (contracts !== undefined) ctx.lifetimeCompletedContracts = contracts;
    if (hours !== undefined) ctx.lifetimePaidHours = hours;
    if (earnings !== undefined) ctx.lifetimeEarnings = earnings;
  } else if (field.startsWith('o:')) {
    s.observations.push(JSON.parse(splitStamped(value)[1]) as StoredObservation);
  } else if (field.startsWith('f:')) {
    // "<flagId>|<json>": the id prefix lets the script close exactly the flag that is open
    s.openFlags.set(field.slice(2), JSON.parse(splitStamped(value)[1]) as FlagState);
  } else if (field.startsWith('g:')) {
    s.flagGenerations.set(field.slice(2), Number(value));
  } else if (field.startsWith('clr:')) {
    s.clearedPatterns.set(field.slice(4), Number(value));
  } else if (field.startsWith('cap:')) {
    const code = field.slice(4);
    const kind = code.startsWith('e:') ? (CODE_TO_EVENT_KIND.get(code.slice(2)) ?? code) : code;
    s.capsReached.set(kind, Number(value));
  }
}

/** Maps each novelty name to its position among the op list's value ops (the script's answer order). */
export function noveltyIndex(ops: AccountOp[]): Map<string, number> {
  const index = new Map<string, number>();
  let i = 0;
  for (const op of ops) {
    if (op.op !== 'value') continue;
    if (op.noveltyName) index.set(op.noveltyName, i);
    i++;
  }
  return index;
}
