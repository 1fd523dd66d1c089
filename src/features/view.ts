// Read-only views over a snapshot, in the terms signals think in.
import {
  queryKey,
  type AccountOp,
  type AccountQuery,
  type AccountSnapshot,
  type ContractRecord,
  type CountResult,
  type DistinctResult,
  type EventKind,
  type SessionRecord,
  type StoredObservation,
  type ValueKind,
} from './model.js';

/**
 * One observation per signal, as the store keeps them: a later one replaces an earlier one only if
 * it brings evidence the earlier lacks, so the same events seen again in any order change nothing.
 */
export function mergeObservations(
  a: readonly StoredObservation[],
  b: readonly StoredObservation[],
): StoredObservation[] {
  const bySignal = new Map<string, StoredObservation>();
  for (const o of [...a, ...b]) {
    const cur = bySignal.get(o.signalId);
    if (!cur || o.evidenceEventIds.some((id) => !cur.evidenceEventIds.includes(id)))
      bySignal.set(o.signalId, o);
  }
  return [...bySignal.values()];
}

/**
 * A signal asked a question its needs() do not declare. Retention is derived from the declared
 * windows, so an undeclared one could be answered from data already trimmed: refused instead.
 */
export class MissingFeatureError extends Error {
  constructor(key: string) {
    super(`feature "${key}" was not requested for this event; add it to the signal's needs()`);
    this.name = 'MissingFeatureError';
  }
}

export class AccountView {
  constructor(
    readonly snapshot: AccountSnapshot,
    private readonly noveltyIndex: ReadonlyMap<string, number> = new Map(),
  ) {}

  /** Remembered signal observations (one per signal, the newest), for corroboration. */
  get observations(): StoredObservation[] {
    return this.snapshot.observations;
  }

  get lastLogin() {
    return this.snapshot.lastLogin;
  }
  get previousLogin() {
    return this.snapshot.previousLogin;
  }

  get accountId(): string {
    return this.snapshot.accountId;
  }
  get asOf(): number {
    return this.snapshot.asOf;
  }
  get context() {
    return this.snapshot.context;
  }

  private get<T>(q: AccountQuery): T {
    const r = this.snapshot.answer(q);
    if (r === undefined) throw new MissingFeatureError(queryKey(q));
    return r as T;
  }

  /** Events of a kind in the window (asOf - windowMs, asOf]. */
  count(kind: EventKind, windowMs: number, maxIds = 20): CountResult {
    return this.get({ q: 'count', kind, from: -windowMs, to: 0, maxIds });
  }

  /** Events of a kind in [asOf, asOf + windowMs]: seen when an earlier event arrives late. */
  countAfter(kind: EventKind, windowMs: number, maxIds = 20): CountResult {
    return this.get({ q: 'count', kind, from: -1, to: windowMs, maxIds });
  }

  distinct(kind: ValueKind, windowMs: number, maxValues = 20): DistinctResult {
    return this.get({ q: 'distinct', kind, from: -windowMs, maxValues });
  }

  sessions(windowMs: number): SessionRecord[] {
    return this.get({ q: 'sessions', from: -windowMs });
  }

  contracts(): ContractRecord[] {
    return this.get({ q: 'contracts' });
  }

  /**
   * When a value recorded by this event (named by the processor, e.g. "country") was last and
   * first seen, as stored before this event; `recorded` is false if the event has no such value.
   */
  lastSeenBefore(name: string): { recorded: boolean; last?: number; first?: number } {
    const i = this.noveltyIndex.get(name);
    if (i === undefined) return { recorded: false };
    return { recorded: true, ...this.snapshot.lastSeenBefore[i] };
  }
}

/** Maps each novelty name to its position among the op list's value ops (Applied.lastSeenBefore). */
export function noveltyIndex(ops: readonly AccountOp[]): Map<string, number> {
  const index = new Map<string, number>();
  let i = 0;
  for (const op of ops) {
    if (op.op !== 'value') continue;
    if (op.noveltyName) index.set(op.noveltyName, i);
    i++;
  }
  return index;
}
