// Where the durable copy of the state lives. Redis in production, replay and the integration
// tests; an in-process map for the pure-domain tests of the engine (same encoding, same merges).
//
// Redis keys carry a Cluster hash tag per entity ({a:<account>}, {i:<ip>}, {d:<device>},
// {p:<instrument>}), so every command touches one slot and the same code runs on one Redis or a
// Cluster. An account is one string (its encoded features); an entity is a sorted set of account
// ids scored by last-seen event time, with a member "!capped" (account ids never contain "!")
// scored +inf once its member cap was reached. A batch's reads and its writes each go as one
// pipeline (on a Cluster, ioredis pipelines them per node).
import { Cluster, type Redis } from 'ioredis';
import { ENTITY_TYPES } from './model.js';
import { entityKey, type EntityAccounts, type EntityRef, type EntityUpdate } from './shared-entities.js';

export interface AccountWrite {
  accountId: string;
  bytes: Buffer;
}

/**
 * A reviewer's decision on an open flag, as the signals report counts it. Stored under its outcome
 * id, so a batch written twice (a retry, a replay after a crash) counts it once.
 */
export interface ReviewRecord {
  outcomeId: string;
  flagId: string;
  queue: string;
  outcome: string;
  decidedAt: number;
  /** The signals on the flag the reviewer decided on. */
  signals: string[];
}

/** One batch's durable changes, written before its offsets are committed. */
export interface StateWrite {
  entities: EntityUpdate[];
  accounts: AccountWrite[];
  reviews: ReviewRecord[];
}

/** How long review records stay for the signals report: a year, with room for a year-on-year look. */
export const REVIEW_RETENTION_MS = 400 * 86_400_000;
const DAY_MS = 86_400_000;
/** The UTC day a decision was taken, as its key names it. */
const dayOf = (t: number) => new Date(Math.floor(t / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
function daysBetween(since: number, until: number): string[] {
  const out: string[] = [];
  for (let d = Math.floor(since / DAY_MS); d <= Math.floor(until / DAY_MS); d++) out.push(dayOf(d * DAY_MS));
  return out;
}

export interface StateBackend {
  readAccounts(ids: readonly string[]): Promise<(Buffer | null)[]>;
  readEntities(refs: readonly EntityRef[]): Promise<EntityAccounts[]>;
  /** Entities first, then accounts: an account whose write landed never misses its sightings. */
  write(w: StateWrite, accountTtlMs: number): Promise<void>;
  /** Review records decided in [since, until]. */
  reviews(since: number, until: number): Promise<ReviewRecord[]>;
}

/** The member that marks an entity whose member cap was reached. */
const CAPPED = '!capped';

export class StateStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StateStoreError';
  }
}

type RedisLike = Redis | Cluster;

export class RedisStateBackend implements StateBackend {
  /** Redis commands sent, for the commands-per-event figure. */
  commandsSent = 0;
  bytesWritten = 0;

  constructor(
    readonly redis: RedisLike,
    readonly keyPrefix: string,
  ) {}

  accountKey(accountId: string): string {
    return `${this.keyPrefix}:{a:${accountId}}`;
  }
  entityKey(r: EntityRef): string {
    return `${this.keyPrefix}:{${ENTITY_TYPES[r.type]}:${r.id}}:a`;
  }
  /** One hash per UTC day of decisions: outcome id -> record (one slot, the {stats} tag). */
  reviewKey(day: string): string {
    return `${this.keyPrefix}:{stats}:reviews:${day}`;
  }

  /**
   * Sends commands together and returns their replies: one pipeline on one Redis; on a Cluster,
   * one command each, which ioredis auto-pipelines per node (a Cluster pipeline must stay in one
   * slot). Any failed command fails the whole call: the batch is retried, and its writes are
   * idempotent.
   */
  private async send(what: string, commands: (string | Buffer | number)[][]): Promise<unknown[]> {
    this.commandsSent += commands.length;
    try {
      if (this.redis instanceof Cluster)
        return await Promise.all(commands.map(([name, ...args]) => this.redis.call(String(name), ...args)));
      const replies =
        // Buffers as they are: an account's encoded features are bytes, not UTF-8 text
        (await this.redis.pipeline(commands).exec()) ?? [];
      return replies.map(([err, reply]) => {
        if (err) throw err;
        return reply;
      });
    } catch (err) {
      throw new StateStoreError(`${what}: ${(err as Error).message}`, { cause: err });
    }
  }

  async readAccounts(ids: readonly string[]): Promise<(Buffer | null)[]> {
    if (!ids.length) return [];
    this.commandsSent += ids.length;
    try {
      if (this.redis instanceof Cluster)
        return await Promise.all(ids.map((id) => this.redis.getBuffer(this.accountKey(id))));
      const p = this.redis.pipeline();
      for (const id of ids) p.getBuffer(this.accountKey(id));
      const replies = (await p.exec()) ?? [];
      return replies.map(([err, reply]) => {
        if (err) throw err;
        return reply as Buffer | null;
      });
    } catch (err) {
      throw new StateStoreError(`reading account state: ${(err as Error).message}`, { cause: err });
    }
  }

  async readEntities(refs: readonly EntityRef[]): Promise<EntityAccounts[]> {
    const replies = await this.send(
      'reading shared entities',
      refs.map((r) => ['zrange', this.entityKey(r), 0, -1, 'WITHSCORES']),
    );
    return replies.map((flat) => {
      const accounts = new Map<string, number>();
      let capped = false;
      const list = flat as string[];
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] === CAPPED) capped = true;
        else accounts.set(list[i]!, Number(list[i + 1]));
      }
      return { accounts, capped };
    });
  }

  async write(w: StateWrite, accountTtlMs: number): Promise<void> {
    const entities: (string | Buffer | number)[][] = [];
    for (const u of w.entities) {
      const key = this.entityKey(u.ref);
      const add: (string | number)[] = ['zadd', key, 'GT'];
      for (const [account, at] of u.sightings) add.push(at, account);
      if (u.newlyCapped) add.push('+inf', CAPPED);
      entities.push(add);
      if (u.trim) entities.push(['zremrangebyscore', key, '-inf', u.trimBefore]);
      // keeps the newest cap accounts (and the marker, scored above them all)
      if (u.overCap) entities.push(['zremrangebyrank', key, 0, -u.cap - 2]);
      entities.push(['pexpire', key, u.retentionMs]);
    }
    const ttl = Math.trunc(accountTtlMs);
    const accounts: (string | Buffer | number)[][] = [];
    for (const a of w.accounts) {
      this.bytesWritten += a.bytes.length;
      accounts.push(['set', this.accountKey(a.accountId), a.bytes, 'PX', ttl]);
    }
    for (const r of w.reviews) {
      const key = this.reviewKey(dayOf(r.decidedAt));
      accounts.push(['hset', key, r.outcomeId, JSON.stringify(r)]);
      // from the day's end, not from this write: writing a record again does not extend its life
      accounts.push([
        'pexpireat',
        key,
        (Math.floor(r.decidedAt / DAY_MS) + 1) * DAY_MS + REVIEW_RETENTION_MS,
      ]);
    }
    // entities before accounts: an account whose write landed never misses its sightings (one
    // connection runs a pipeline in order; a Cluster's nodes are asked one after the other)
    if (this.redis instanceof Cluster) {
      if (entities.length) await this.send('writing shared entities', entities);
      if (accounts.length) await this.send('writing account state', accounts);
    } else if (entities.length + accounts.length)
      await this.send('writing state', [...entities, ...accounts]);
  }

  async reviews(since: number, until: number): Promise<ReviewRecord[]> {
    const days = daysBetween(since, until);
    const hashes = await Promise.all(days.map((d) => this.redis.hgetall(this.reviewKey(d))));
    return inRange(
      hashes.flatMap((h) => Object.values(h).map((v) => JSON.parse(v) as ReviewRecord)),
      since,
      until,
    );
  }

  /** Every key of this namespace (all masters of a cluster). */
  async keys(): Promise<string[]> {
    const nodes =
      'nodes' in this.redis && typeof this.redis.nodes === 'function'
        ? this.redis.nodes('master')
        : [this.redis];
    const found: string[] = [];
    for (const node of nodes as Redis[]) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', `${this.keyPrefix}:*`, 'COUNT', 1000);
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
}

const inRange = (records: ReviewRecord[], since: number, until: number) =>
  records
    .filter((r) => r.decidedAt >= since && r.decidedAt <= until)
    .sort((a, b) => a.decidedAt - b.decidedAt || (a.outcomeId < b.outcomeId ? -1 : 1));

/** The same contract in process memory: for the engine's in-memory tests (no expiry). */
export class MemoryStateBackend implements StateBackend {
  readonly accounts = new Map<string, Buffer>();
  readonly entities = new Map<string, EntityAccounts>();
  private readonly reviewed = new Map<string, ReviewRecord>();

  async readAccounts(ids: readonly string[]): Promise<(Buffer | null)[]> {
    return ids.map((id) => this.accounts.get(id) ?? null);
  }

  async readEntities(refs: readonly EntityRef[]): Promise<EntityAccounts[]> {
    return refs.map((r) => {
      const e = this.entities.get(entityKey(r));
      return { accounts: new Map(e?.accounts ?? []), capped: e?.capped ?? false };
    });
  }

  async write(w: StateWrite): Promise<void> {
    for (const u of w.entities) {
      const key = entityKey(u.ref);
      const e = this.entities.get(key) ?? { accounts: new Map<string, number>(), capped: false };
      for (const [a, at] of u.sightings) e.accounts.set(a, Math.max(e.accounts.get(a) ?? at, at));
      if (u.newlyCapped) e.capped = true;
      if (u.trim) for (const [a, at] of e.accounts) if (at <= u.trimBefore) e.accounts.delete(a);
      if (u.overCap) {
        const oldest = [...e.accounts].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
        for (const [a] of oldest.slice(0, e.accounts.size - u.cap)) e.accounts.delete(a);
      }
      this.entities.set(key, e);
    }
    for (const a of w.accounts) this.accounts.set(a.accountId, a.bytes);
    for (const r of w.reviews) this.reviewed.set(r.outcomeId, r);
  }

  async reviews(since: number, until: number): Promise<ReviewRecord[]> {
    return inRange([...this.reviewed.values()], since, until);
  }
}
