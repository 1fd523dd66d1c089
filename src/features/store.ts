// The Redis feature store: one server-side script per entity per event, keys under one hash tag
// per entity, so the same code runs on a single Redis and on a Redis Cluster.
import { hash as hashOnce } from 'node:crypto';
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
/** h, v, s, c, n; then the sorted sets of the event kinds a call touches. */
const ACCOUNT_BASE_KEYS = 5;
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
type ScriptRunner<T> = (...keysThenArgs: string[]) => Promise<T>;
/** The account script's answer: [ts, late, watermark, lastSeen, answers, hash fields, op results]. */
type AccountReply = [number, number, number, [number, number][], unknown[], string[], number[]];

export class FeatureStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FeatureStoreError';
  }
}

export class FeatureStore {
  /** By the number of event-kind keys a call declares (the same script: one SHA). */
  private runAccount!: ScriptRunner<AccountReply>[];
  private readonly runEntity: ScriptRunner<[number, number, ...string[]]>;
  /** Redis commands sent, for the round-trips-per-event figure. */
  commandsSent = 0;

  constructor(
    readonly redis: RedisLike,
    private layout: StoreLayout,
  ) {
    this.defineAccountScript();
    if (!('fairflagEntity' in redis))
      redis.defineCommand('fairflagEntity', { lua: ENTITY_LUA, numberOfKeys: 2 });
    const r = redis as unknown as Record<string, (...a: string[]) => Promise<never>>;
    this.runEntity = (...a) => r['fairflagEntity']!.call(redis, ...a);
  }

  setLayout(layout: StoreLayout): void {
    this.layout = layout;
    this.defineAccountScript();
  }

  /**
   * The account script carries the layout (retention, caps) as a table literal: the same for every
   * call under one configuration, so it is neither sent nor decoded per call (it was a third of
   * a request's bytes). Another layout is another script, and another command name, so stores with
   * different layouts can share one client.
   */
  private defineAccountScript(): void {
    const lua = ACCOUNT_LUA.replace('LAYOUT_LITERAL', () => accountLayoutLua(this.layout));
    const name = `fairflagAccount_${hashOnce('sha1', lua, 'hex').slice(0, 12)}_`;
    // defineCommand sends EVALSHA and falls back to EVAL once per connection when the script
    // is not cached (after a restart or failover).
    // A call declares only the event-kind sets it touches (most touch one or none of eight): fewer
    // key names to build, send and parse per call. A fixed key count per command makes the first
    // argument a key: ioredis's cluster auto-pipelining routes a command by its first key, and
    // would route by "7" if the count came first. So: one command name per count.
    const kinds = EVENT_KIND_CODES.length;
    if (!(`${name}0` in this.redis)) {
      for (let n = 0; n <= kinds; n++) {
        this.redis.defineCommand(`${name}${n}`, { lua, numberOfKeys: ACCOUNT_BASE_KEYS + n });
      }
    }
    const r = this.redis as unknown as Record<string, (...a: string[]) => Promise<never>>;
    this.runAccount = Array.from(
      { length: kinds + 1 },
      (_, n) =>
        (...a: string[]) =>
          r[`${name}${n}`]!.call(this.redis, ...a),
    );
  }

  /** All of an account's keys; a call declares the first five and the event kinds it touches. */
  accountKeys(accountId: string, kindCodes = EVENT_KIND_CODES): string[] {
    const base = `${this.layout.keyPrefix}:{a:${accountId}}`;
    const keys = [`${base}:h`, `${base}:v`, `${base}:s`, `${base}:c`, `${base}:n`];
    for (const c of kindCodes) keys.push(`${base}:e:${c}`);
    return keys;
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
    let kinds = '';
    for (const q of queries) {
      if (q.q !== 'count') continue;
      if (q.maxIds > 0 && COUNTED_ONLY.has(q.kind)) {
        throw new FeatureStoreError(`${q.kind} events are only counted: their ids are not kept`);
      }
      const code = EVENT_KINDS[q.kind];
      if (!kinds.includes(code)) kinds += code;
    }
    for (const o of ops) {
      if (o.op === 'event' && !kinds.includes(EVENT_KINDS[o.kind])) kinds += EVENT_KINDS[o.kind];
    }
    const req = JSON.stringify({
      ts: at,
      ro: readOnly ? 1 : 0,
      w: ops.some((o) => o.op === 'event' || o.op === 'value' || o.op === 'sessionStart') ? 1 : 0,
      ek: kinds,
      ...(family && { wf: `wm:${family}` }),
      ...(memory && { hf: memory.flatMap((m) => ACCOUNT_MEMORY[m]) }),
      ops: ops.map(encodeOp),
      q: queries.map(encodeQuery),
    });
    const keys = this.accountKeys(accountId, kinds);
    this.commandsSent++;
    let raw: AccountReply;
    try {
      raw = await this.runAccount[kinds.length]!(...keys, req);
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

  /**
   * Records `addAccount` on the entity (unless read-only) and, given a query, answers how many
   * accounts were seen on it since `at + query.from`; without one it answers nothing (undefined).
   */
  applyEntity(
    type: EntityType,
    id: string,
    at: number,
    addAccount: string | undefined,
    query: EntityQuery,
    readOnly?: boolean,
  ): Promise<EntitySnapshot>;
  applyEntity(
    type: EntityType,
    id: string,
    at: number,
    addAccount: string | undefined,
    query: EntityQuery | undefined,
    readOnly?: boolean,
  ): Promise<EntitySnapshot | undefined>;
  async applyEntity(
    type: EntityType,
    id: string,
    at: number,
    addAccount: string | undefined,
    query: EntityQuery | undefined,
    readOnly = false,
  ): Promise<EntitySnapshot | undefined> {
    const keys = this.entityKeys(type, id);
    this.commandsSent++;
    let reply: [number, number, ...string[]];
    try {
      // positional: ts, read-only, retention, cap, account to add, window start, ids wanted
      reply = await this.runEntity(
        ...keys,
        String(at),
        readOnly ? '1' : '0',
        String(this.layout.entityRetentionMs[type]),
        String(this.layout.caps.accountsPerEntity),
        addAccount ?? '',
        query ? String(query.from) : '',
        query ? String(query.maxIds) : '0',
      );
    } catch (err) {
      throw new FeatureStoreError(`entity script failed for ${type} ${id}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!query) return undefined;
    const [n, capped, ...ids] = reply;
    return { type, id, accounts: { n, values: ids }, capped: capped === 1 };
  }
}

/** The layout as the account script reads it, a Lua table literal: retention by set, caps. */
function accountLayoutLua(l: StoreLayout): string {
  const ret: Record<string, number> = { v: l.valueRetentionMs, s: l.sessionRetentionMs };
  for (const [kind, code] of Object.entries(EVENT_KINDS)) ret[code] = l.eventRetentionMs[kind as EventKind];
  const table = (o: Record<string, number>) =>
    `{ ${Object.entries(o)
      .map(([k, v]) => `${k} = ${Math.trunc(v)}`)
      .join(', ')} }`;
  // ttl and keepE are only ever command arguments: text, so Redis need not format them per call
  return (
    `{ lat = ${Math.trunc(l.allowedLatenessMs)}, ttl = '${Math.trunc(Math.max(...Object.values(ret)))}', ` +
    `ret = ${table(ret)}, cap = ${table({ e: l.caps.eventsPerKind, v: l.caps.values, s: l.caps.sessions })}, ` +
    `keepE = '${-Math.trunc(l.caps.eventsPerKind) - 1}' }`
  );
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
  // the one-shot form: the same bytes as createHash(), in less than half the time
  return hashOnce('sha1', id, 'base64url').slice(0, 11);
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

/** The field pairs, listed once: building them per record was a measurable part of each event. */
const LOGIN_FIELD_PAIRS = Object.entries(LOGIN_FIELDS);

function encodeLogin(login: LoginRecord): string {
  const out: Record<string, unknown> = {};
  for (const [k, short] of LOGIN_FIELD_PAIRS) {
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
  for (const [k, short] of LOGIN_FIELD_PAIRS) {
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

const CONTRACT_FIELD_PAIRS = Object.entries(CONTRACT_FIELDS);

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
  for (const [k, short] of CONTRACT_FIELD_PAIRS) if (raw[short] !== undefined) rec[k] = raw[short];
  return rec as unknown as ContractRecord;
}

/** Splits "<stamp>|<rest>" as written by the script. */
function splitStamped(v: string): [number, string] {
  const i = v.indexOf('|');
  return [Number(v.slice(0, i)), v.slice(i + 1)];
}

function decodeAccount(accountId: string, queries: AccountQuery[], reply: AccountReply): AccountSnapshot {
  const [ts, late, wm, lastSeen, answers, hash, opResults] = reply;
  const results: AccountSnapshot['results'] = new Map();
  queries.forEach((q, i) => {
    const a = answers[i];
    switch (q.q) {
      case 'count':
      case 'distinct': {
        const [n, list] = a as [number, string[]];
        results.set(queryKey(q), q.q === 'count' ? { n, ids: list } : { n, values: list });
        break;
      }
      case 'sessions': {
        const flat = a as string[];
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
        const flat = a as string[];
        const contracts: ContractRecord[] = [];
        for (let j = 0; j < flat.length; j += 2) contracts.push(decodeContract(flat[j]!, flat[j + 1]!));
        results.set(queryKey(q), contracts);
        break;
      }
    }
  });

  const snapshot: AccountSnapshot = {
    accountId,
    asOf: ts,
    late: late === 1,
    watermark: wm,
    lastSeenBefore: lastSeen.map(([last, first]) => ({
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
    opResults,
  };
  for (let j = 0; j < hash.length; j += 2) readHashField(snapshot, hash[j]!, hash[j + 1]!);
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
