// Where the durable copy of the state lives. Redis in production, replay and the integration
// tests; an in-process map for the pure-domain tests of the engine (same encoding, same merges).
//
// Redis keys carry a Cluster hash tag per entity ({a:<account>}, {i:<ip>}, {d:<device>},
// {p:<instrument>}), so every command touches one slot and the same code runs on one Redis or a
// Cluster. An account is one string (its encoded features); an entity is a sorted set of account
// ids scored by last-seen event time, plus a marker key once its member cap was reached.
import type { Cluster, Redis } from 'ioredis';
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
  entityKeys(r: EntityRef): [string, string] {
    const base = `${this.keyPrefix}:{${ENTITY_TYPES[r.type]}:${r.id}}`;
    return [`${base}:a`, `${base}:m`];
  }
  private get statsKey(): string {
    return `${this.keyPrefix}:{stats}:outcomes`;
  }

  private async guard<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw new StateStoreError(`${what}: ${(err as Error).message}`, { cause: err });
    }
  }

  readAccounts(ids: readonly string[]): Promise<(Buffer | null)[]> {
    this.commandsSent += ids.length;
    // one command per key: on a Cluster they live in many slots; on one Redis they are written
    // back to back on one connection, a pipeline in effect
    return this.guard('reading account state', () =>
      Promise.all(ids.map((id) => this.redis.getBuffer(this.accountKey(id)))),
    );
  }

  readEntities(refs: readonly EntityRef[]): Promise<EntityAccounts[]> {
    this.commandsSent += refs.length * 2;
    return this.guard('reading shared entities', () =>
      Promise.all(
        refs.map(async (r) => {
          const [a, m] = this.entityKeys(r);
          const [flat, capped] = await Promise.all([
            this.redis.zrange(a, 0, -1, 'WITHSCORES'),
            this.redis.exists(m),
          ]);
          const accounts = new Map<string, number>();
          for (let i = 0; i < flat.length; i += 2) accounts.set(flat[i]!, Number(flat[i + 1]));
          return { accounts, capped: capped === 1 };
        }),
      ),
    );
  }

  async write(w: StateWrite, accountTtlMs: number): Promise<void> {
    const r = this.redis;
    await this.guard('writing shared entities', () =>
      Promise.all(
        w.entities.map(async (u) => {
          const [a, m] = this.entityKeys(u.ref);
          const args: (string | number)[] = [];
          for (const [account, at] of u.sightings) args.push(at, account);
          const ttl = String(u.retentionMs);
          this.commandsSent += 4;
          const [, , dropped] = await Promise.all([
            r.zadd(a, 'GT', ...args),
            r.zremrangebyscore(a, '-inf', u.trimBefore),
            r.zremrangebyrank(a, 0, -u.cap - 1),
            r.pexpire(a, ttl),
          ]);
          if (dropped > 0) {
            this.commandsSent += 2;
            await Promise.all([
              r.hset(m, 'capped', String(Math.max(...u.sightings.values()))),
              r.pexpire(m, ttl),
            ]);
          }
        }),
      ),
    );
    const ttl = String(Math.trunc(accountTtlMs));
    this.commandsSent += w.accounts.length + (w.outcomeCounts.size ? 1 : 0);
    await this.guard('writing account state', () =>
      Promise.all([
        ...w.accounts.map((a) => {
          this.bytesWritten += a.bytes.length;
          return r.set(this.accountKey(a.accountId), a.bytes, 'PX', ttl);
        }),
        ...[...w.outcomeCounts].map(([field, n]) => r.hincrby(this.statsKey, field, n)),
      ]),
    );
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
      for (const [a, at] of e.accounts) if (at <= u.trimBefore) e.accounts.delete(a);
      if (e.accounts.size > u.cap) {
        const oldest = [...e.accounts].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
        for (const [a] of oldest.slice(0, e.accounts.size - u.cap)) e.accounts.delete(a);
        e.capped = true;
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
