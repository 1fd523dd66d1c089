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

/** One batch's durable changes, written before its offsets are committed. */
export interface StateWrite {
  entities: EntityUpdate[];
  accounts: AccountWrite[];
  /** Review outcomes per signal ("<signalId>|<outcome>" -> count to add). */
  outcomeCounts: Map<string, number>;
}

export interface StateBackend {
  readAccounts(ids: readonly string[]): Promise<(Buffer | null)[]>;
  readEntities(refs: readonly EntityRef[]): Promise<EntityAccounts[]>;
  /** Entities first, then accounts: an account whose write landed never misses its sightings. */
  write(w: StateWrite, accountTtlMs: number): Promise<void>;
  outcomeCounts(): Promise<Map<string, Record<string, number>>>;
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
  private get statsKey(): string {
    return `${this.keyPrefix}:{stats}:outcomes`;
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
    for (const [field, n] of w.outcomeCounts) accounts.push(['hincrby', this.statsKey, field, n]);
    // entities before accounts: an account whose write landed never misses its sightings (one
    // connection runs a pipeline in order; a Cluster's nodes are asked one after the other)
    if (this.redis instanceof Cluster) {
      if (entities.length) await this.send('writing shared entities', entities);
      if (accounts.length) await this.send('writing account state', accounts);
    } else if (entities.length + accounts.length)
      await this.send('writing state', [...entities, ...accounts]);
  }

  async outcomeCounts(): Promise<Map<string, Record<string, number>>> {
    return parseOutcomeCounts(await this.redis.hgetall(this.statsKey));
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

function parseOutcomeCounts(raw: Record<string, string>): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const [field, n] of Object.entries(raw)) {
    const [signal = '', outcome = ''] = field.split('|');
    out.set(signal, { ...out.get(signal), [outcome]: Number(n) });
  }
  return out;
}

/** The same contract in process memory: for the engine's in-memory tests (no expiry). */
export class MemoryStateBackend implements StateBackend {
  readonly accounts = new Map<string, Buffer>();
  readonly entities = new Map<string, EntityAccounts>();
  private readonly stats = new Map<string, number>();

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
    for (const [f, n] of w.outcomeCounts) this.stats.set(f, (this.stats.get(f) ?? 0) + n);
  }

  async outcomeCounts(): Promise<Map<string, Record<string, number>>> {
    return parseOutcomeCounts(Object.fromEntries([...this.stats].map(([k, v]) => [k, String(v)])));
  }
}
