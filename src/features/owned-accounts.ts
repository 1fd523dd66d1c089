// The accounts this instance owns, in memory: loaded from Redis on first touch, changed only by the
// batches of their partition, written back once per batch, evicted least-recently-used once
// clean. Nothing is lost by eviction: Redis has every change before its batch is committed.
import { LRUCache } from 'lru-cache';
import { AccountFeatures } from './account-features.js';
import type { FeatureLayout } from './model.js';
import { decodeAccount, encodeAccount } from './persisted.js';
import type { AccountWrite, StateBackend } from './state-backend.js';

export interface OwnedAccount {
  readonly features: AccountFeatures;
  /** The partition (of every input topic) the account's events arrive on. */
  readonly partition: number;
  /** Bumped by every change; `persisted` is the version Redis has. */
  version: number;
  snapshotted: number;
  persisted: number;
  /** Batches holding it right now: it is not evicted while held. */
  uses: number;
  /** Wall-clock time of the last write (or load): Redis expires the copy a TTL after it. */
  writtenAt: number;
}

export interface AccountSnapshotWrite extends AccountWrite {
  owned: OwnedAccount;
  version: number;
}

export interface OwnedAccountsOptions {
  backend: StateBackend;
  layout: () => FeatureLayout;
  /** How long Redis keeps an account after its last write. */
  ttlMs: () => number;
  /** Clean accounts kept in memory beyond those in use or not yet written. */
  maxAccounts: number;
  now?: () => number;
  onUnreadable?: (accountId: string, err: unknown) => void;
}

export class OwnedAccounts {
  /** In use by a batch, or changed and not yet in Redis: never evicted. */
  private readonly held = new Map<string, OwnedAccount>();
  private readonly clean: LRUCache<string, OwnedAccount>;
  private readonly loading = new Map<string, Promise<OwnedAccount>>();
  private readonly changedIn = new Map<number, Set<OwnedAccount>>();
  private readonly now: () => number;
  readonly stats = { loads: 0, loadedEmpty: 0, hits: 0, evictions: 0, expired: 0, unreadable: 0 };

  constructor(private readonly opts: OwnedAccountsOptions) {
    this.now = opts.now ?? Date.now;
    this.clean = new LRUCache<string, OwnedAccount>({
      max: Math.max(1, opts.maxAccounts),
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.stats.evictions++;
      },
    });
  }

  get size(): number {
    return this.held.size + this.clean.size;
  }

  /**
   * Holds every named account for a batch, loading those not in memory with one read. The same
   * account is never loaded twice at once, nor replaced once in memory.
   */
  async acquire(wanted: ReadonlyMap<string, number>): Promise<Map<string, OwnedAccount>> {
    const out = new Map<string, OwnedAccount>();
    const pending: [string, Promise<OwnedAccount>][] = [];
    const misses: [string, number][] = [];
    for (const [id, partition] of wanted) {
      const have = this.take(id);
      if (have) {
        this.stats.hits++;
        out.set(id, have);
      } else {
        const inFlight = this.loading.get(id);
        if (inFlight) pending.push([id, inFlight]);
        else misses.push([id, partition]);
      }
    }
    if (misses.length) {
      const installed = this.opts.backend
        .readAccounts(misses.map(([id]) => id))
        .then((all) => misses.map(([id, partition], i) => this.install(id, partition, all[i] ?? null)));
      misses.forEach(([id], i) => {
        const p = installed.then((list) => list[i]!);
        // a failed read rejects every account's promise; the batch awaits them one after the
        // other and gives up at the first, so the others must not count as unhandled
        p.catch(() => undefined);
        this.loading.set(id, p);
        pending.push([id, p]);
      });
      installed
        .finally(() => {
          for (const [id] of misses) this.loading.delete(id);
        })
        .catch(() => undefined);
    }
    try {
      for (const [id, p] of pending) {
        const o = await p;
        o.uses++;
        out.set(id, o);
      }
    } catch (err) {
      // a failed read fails the batch, which is retried: nothing was changed
      this.release(out.values());
      throw err;
    }
    return out;
  }

  private take(id: string): OwnedAccount | undefined {
    let o = this.held.get(id);
    if (!o) {
      o = this.clean.get(id);
      if (!o) return undefined;
      this.clean.delete(id);
      if (this.now() - o.writtenAt > this.opts.ttlMs()) {
        // Redis has let it expire: so does memory, or a cold start would see something else
        this.stats.expired++;
        o = this.fresh(id, o.partition);
      }
      this.held.set(id, o);
    }
    o.uses++;
    return o;
  }

  private install(id: string, partition: number, bytes: Buffer | null): OwnedAccount {
    this.stats.loads++;
    if (!bytes) this.stats.loadedEmpty++;
    let features: AccountFeatures | undefined;
    if (bytes) {
      try {
        features = decodeAccount(id, bytes, this.opts.layout());
      } catch (err) {
        // Stored bytes this version cannot read must not stop the partition: the account starts
        // again from its next events, and the operator is told (the next write replaces them).
        this.stats.unreadable++;
        this.opts.onUnreadable?.(id, err);
      }
    }
    const o = this.fresh(id, partition, features);
    this.held.set(id, o);
    return o;
  }

  private fresh(id: string, partition: number, features?: AccountFeatures): OwnedAccount {
    return {
      features: features ?? new AccountFeatures(id, this.opts.layout()),
      partition,
      version: 0,
      snapshotted: 0,
      persisted: 0,
      uses: 0,
      writtenAt: this.now(),
    };
  }

  changed(o: OwnedAccount): void {
    o.version++;
    let set = this.changedIn.get(o.partition);
    if (!set) this.changedIn.set(o.partition, (set = new Set()));
    set.add(o);
  }

  release(accounts: Iterable<OwnedAccount>): void {
    for (const o of accounts) {
      o.uses--;
      this.idleIfClean(o);
    }
  }

  private idleIfClean(o: OwnedAccount): void {
    if (o.uses > 0 || o.persisted < o.version) return;
    const id = o.features.accountId;
    if (this.held.get(id) !== o) return;
    this.held.delete(id);
    this.clean.set(id, o);
  }

  /**
   * Encodes the accounts of a partition changed since its last snapshot. Taken synchronously at
   * the end of a batch, so it holds exactly the changes of the batches processed so far.
   */
  snapshot(partition: number): AccountSnapshotWrite[] {
    const set = this.changedIn.get(partition);
    if (!set?.size) return [];
    this.changedIn.delete(partition);
    return [...set].map((o) => {
      o.snapshotted = o.version;
      return {
        accountId: o.features.accountId,
        bytes: encodeAccount(o.features),
        owned: o,
        version: o.version,
      };
    });
  }

  /** The snapshot's writes are in Redis: accounts with no newer change may be evicted again. */
  persisted(writes: readonly AccountSnapshotWrite[]): void {
    const at = this.now();
    for (const w of writes) {
      w.owned.persisted = Math.max(w.owned.persisted, w.version);
      w.owned.writtenAt = at;
      this.idleIfClean(w.owned);
    }
  }

  /** Forgets the accounts of partitions this instance no longer owns (or all): the next owner loads them. */
  drop(partitions?: ReadonlySet<number>): number {
    let n = 0;
    const gone = (o: OwnedAccount) => !partitions || partitions.has(o.partition);
    for (const [id, o] of [...this.held, ...this.clean.entries()]) {
      if (!gone(o)) continue;
      this.held.delete(id);
      this.clean.delete(id);
      n++;
    }
    for (const p of [...this.changedIn.keys()])
      if (!partitions || partitions.has(p)) this.changedIn.delete(p);
    return n;
  }

  setLayout(layout: FeatureLayout): void {
    for (const o of this.held.values()) o.features.setLayout(layout);
    for (const o of this.clean.values()) o.features.setLayout(layout);
  }

  /** Partitions with accounts in memory (for the rebalance log). */
  partitions(): Set<number> {
    const out = new Set<number>();
    for (const o of this.held.values()) out.add(o.partition);
    for (const o of this.clean.values()) out.add(o.partition);
    return out;
  }
}

/** An account's features as Redis has them (as of its owner's last written batch); empty if none. */
export async function readStoredAccount(
  backend: StateBackend,
  accountId: string,
  layout: FeatureLayout,
): Promise<AccountFeatures> {
  const [bytes] = await backend.readAccounts([accountId]);
  return bytes ? decodeAccount(accountId, bytes, layout) : new AccountFeatures(accountId, layout);
}
