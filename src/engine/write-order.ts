// The order in which one partition's batches may write. Batches of different topics of the same
// partition are processed concurrently (kafkajs runs them side by side), and they share accounts:
// a later batch's changes may sit in memory before an earlier batch's flags are produced.
//
// - Produce: each partition's batches produce their flags one after the other, in the order they
//   were processed (their turns).
// - Persist: batches become durable in groups, Kafka Streams' commit interval made adaptive: while
//   one group is being written, the batches processed meanwhile wait, and the next group is all of
//   them, written as one snapshot of the partition's changed accounts (an account changed by five
//   batches is encoded and written once) and its entity updates merged. A group is snapshotted
//   synchronously, so it holds exactly its batches' changes; it is written only after every one of
//   its batches has produced its flags (a snapshot never reaches Redis before the flags it implies
//   reach Kafka, or a crash would leave a replayed event "seen" with its flag lost), and only after
//   the group before it (a later snapshot is never overwritten by an earlier one).
import type { AccountSnapshotWrite } from '../features/owned-accounts.js';
import type { EntityUpdate } from '../features/shared-entities.js';
import type { StateWrite } from '../features/state-backend.js';

export interface WriteTurn {
  /** Settles when every earlier batch of the partition has produced; rejects if one gave up. */
  readonly ready: Promise<void>;
  /** Settles when this batch has produced (done) or gave up (fail). */
  readonly finished: Promise<void>;
  done(): void;
  /** This batch gave up (its partition was revoked, the processor stops): later turns fail too. */
  fail(err: unknown): void;
}

/** A processed batch's durable changes, waiting for a group. */
export interface BatchWrites {
  readonly partition: number;
  readonly turn: WriteTurn;
  readonly entities: EntityUpdate[];
  readonly outcomeCounts: Map<string, number>;
}

/** Given up: a batch of the group (or of an earlier group) gave up, or the partition was forgotten. */
export class WriteGroupAbandoned extends Error {
  constructor(partition: number, cause: unknown) {
    super(`partition ${partition}: an earlier batch gave up before its state was written`, { cause });
    this.name = 'WriteGroupAbandoned';
  }
}

export interface GroupWriter {
  /** The partition's accounts changed since its last snapshot, encoded now (synchronously). */
  snapshot(partition: number): AccountSnapshotWrite[];
  write(w: StateWrite & { accounts: AccountSnapshotWrite[] }): Promise<void>;
}

class WriteGroup {
  readonly write: StateWrite & { accounts: AccountSnapshotWrite[] };
  /** Every member has produced and the group before is durable: the write may start. */
  readonly ready: Promise<void>;
  /** Durable; rejects only when abandoned (a failed write is retried by its members). */
  readonly durable: Promise<void>;
  written = false;
  private abandonedBy: unknown;
  private attempt: Promise<void> | undefined;
  private settle!: { resolve: () => void; reject: (err: unknown) => void };

  constructor(
    readonly partition: number,
    members: readonly BatchWrites[],
    accounts: AccountSnapshotWrite[],
    previous: WriteGroup | undefined,
  ) {
    this.write = {
      accounts,
      entities: mergeEntityUpdates(members.flatMap((m) => m.entities)),
      outcomeCounts: sumCounts(members.map((m) => m.outcomeCounts)),
    };
    this.durable = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    // nobody may be waiting on them yet: a rejection is not an unhandled one
    this.durable.catch(() => undefined);
    // turns finish in order: the last member's covers the others
    this.ready = Promise.all([previous?.durable, members[members.length - 1]!.turn.finished]).then(
      () => undefined,
      (err: unknown) => {
        this.abandon(err);
        throw new WriteGroupAbandoned(partition, err);
      },
    );
    this.ready.catch(() => undefined);
  }

  /** Writes the group once; a failed write may be attempted again (by any member). */
  run(writer: GroupWriter): Promise<void> {
    if (this.written) return Promise.resolve();
    if (this.abandonedBy !== undefined)
      return Promise.reject(new WriteGroupAbandoned(this.partition, this.abandonedBy));
    this.attempt ??= (async () => {
      try {
        await writer.write(this.write);
      } finally {
        this.attempt = undefined;
      }
      if (this.abandonedBy !== undefined) throw new WriteGroupAbandoned(this.partition, this.abandonedBy);
      this.written = true;
      this.settle.resolve();
    })();
    return this.attempt;
  }

  abandon(err: unknown): void {
    if (this.written || this.abandonedBy !== undefined) return;
    this.abandonedBy = err ?? new Error('abandoned');
    this.settle.reject(new WriteGroupAbandoned(this.partition, this.abandonedBy));
  }
}

interface PartitionState {
  lastTurn: Promise<void>;
  /** Processed, not yet in a group, in processing order. */
  waiting: BatchWrites[];
  /** The newest group formed. */
  last?: WriteGroup;
}

export class WriteOrder {
  private readonly partitions = new Map<number, PartitionState>();
  /** Kept past a reset: a member of an abandoned group learns so when it writes. */
  private readonly groupOf = new WeakMap<BatchWrites, WriteGroup>();

  constructor(private readonly writer: GroupWriter) {}

  private state(partition: number): PartitionState {
    let s = this.partitions.get(partition);
    if (!s) {
      s = { lastTurn: Promise.resolve(), waiting: [] };
      this.partitions.set(partition, s);
    }
    return s;
  }

  /**
   * A processed batch's place: its produce turn, and its changes queued for the next group. Call
   * it synchronously when the batch's processing ends.
   */
  enqueue(partition: number, entities: EntityUpdate[], outcomeCounts: Map<string, number>): BatchWrites {
    const s = this.state(partition);
    const ready = s.lastTurn;
    let done!: () => void;
    let fail!: (err: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => {
      done = resolve;
      fail = reject;
    });
    finished.catch(() => undefined);
    s.lastTurn = finished;
    const batch: BatchWrites = { partition, turn: { ready, finished, done, fail }, entities, outcomeCounts };
    s.waiting.push(batch);
    return batch;
  }

  /**
   * Resolves when the batch's group may be written: forms that group (all batches processed so far
   * whose group is not formed) once the group before is durable, then waits for its members'
   * produce. Rejects with WriteGroupAbandoned when a batch it depends on gave up: never retry that.
   */
  async readyToWrite(batch: BatchWrites): Promise<void> {
    const s = this.state(batch.partition);
    for (;;) {
      const mine = this.groupOf.get(batch);
      if (mine) return mine.ready;
      if (this.partitions.get(batch.partition) !== s || !s.waiting.includes(batch))
        throw new WriteGroupAbandoned(batch.partition, new Error('the partition was forgotten'));
      if (s.last && !s.last.written) {
        await s.last.durable;
        continue;
      }
      const members = s.waiting.splice(0);
      // Memory holds these batches' changes: if encoding them throws, nothing should (the
      // engine treats it as state at risk)
      const group = new WriteGroup(batch.partition, members, this.writer.snapshot(batch.partition), s.last);
      for (const m of members) this.groupOf.set(m, group);
      s.last = group;
    }
  }

  /** Writes the batch's group (after readyToWrite); may be called again after a failure. */
  write(batch: BatchWrites): Promise<void> {
    const group = this.groupOf.get(batch);
    if (!group) return Promise.reject(new Error('write before readyToWrite'));
    return group.run(this.writer);
  }

  /** After a partition's memory was dropped: its pending groups are abandoned, a new order starts. */
  reset(partition?: number): void {
    for (const [p, s] of this.partitions) {
      if (partition !== undefined && p !== partition) continue;
      s.last?.abandon(new Error(`partition ${p} was forgotten`));
      this.partitions.delete(p);
    }
  }
}

/**
 * One update per entity: the latest sighting per account, trimmed at the newest horizon and capped
 * if any batch asked. Trimming at the newest horizon can drop a sighting an earlier write alone
 * would have kept for a moment: it is older than the entity's retention, outside every window.
 */
export function mergeEntityUpdates(updates: readonly EntityUpdate[]): EntityUpdate[] {
  const byKey = new Map<string, EntityUpdate>();
  for (const u of updates) {
    const key = `${u.ref.type}\n${u.ref.id}`;
    const cur = byKey.get(key);
    if (!cur) {
      byKey.set(key, { ...u, sightings: new Map(u.sightings) });
      continue;
    }
    for (const [a, t] of u.sightings) cur.sightings.set(a, Math.max(cur.sightings.get(a) ?? t, t));
    cur.trimBefore = Math.max(cur.trimBefore, u.trimBefore);
    cur.trim ||= u.trim;
    cur.overCap ||= u.overCap;
    cur.newlyCapped ||= u.newlyCapped;
    cur.retentionMs = Math.max(cur.retentionMs, u.retentionMs);
    cur.cap = Math.min(cur.cap, u.cap);
  }
  return [...byKey.values()];
}

function sumCounts(all: readonly Map<string, number>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of all) for (const [k, n] of m) out.set(k, (out.get(k) ?? 0) + n);
  return out;
}
