// The partition write order in memory: produce turns in processing order, groups written once
// each, never before their batches produced, never before the group before, and a batch that
// gives up abandons what depends on it.
import { describe, expect, it } from 'vitest';
import type { AccountSnapshotWrite } from '../../src/features/owned-accounts.js';
import type { EntityUpdate } from '../../src/features/shared-entities.js';
import type { StateWrite } from '../../src/features/state-backend.js';
import {
  WriteGroupAbandoned,
  WriteOrder,
  mergeEntityUpdates,
  type GroupWriter,
} from '../../src/engine/write-order.js';

type Written = StateWrite & { accounts: AccountSnapshotWrite[] };

/** A writer whose snapshot names the batches changed since the last one, and that can be held. */
class RecordingWriter implements GroupWriter {
  changed: string[] = [];
  readonly snapshots: string[][] = [];
  readonly writes: Written[] = [];
  failNext = 0;
  private hold: Promise<void> | undefined;
  private release: (() => void) | undefined;

  snapshot(): AccountSnapshotWrite[] {
    const names = this.changed.splice(0);
    this.snapshots.push(names);
    return names.map((accountId) => ({ accountId, bytes: Buffer.from(accountId) }) as AccountSnapshotWrite);
  }
  async write(w: Written): Promise<void> {
    if (this.hold) await this.hold;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('redis is out');
    }
    this.writes.push(w);
  }
  holdWrites(): void {
    this.hold = new Promise((r) => (this.release = r));
  }
  releaseWrites(): void {
    this.hold = undefined;
    this.release?.();
  }
}

const update = (id: string, sightings: [string, number][], trimBefore = 0): EntityUpdate => ({
  ref: { type: 'ip', id },
  sightings: new Map(sightings),
  trimBefore,
  retentionMs: 1000,
  cap: 10,
  trim: false,
  overCap: false,
  newlyCapped: false,
});

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('partition write order', () => {
  it('writes the batches processed while a group was written as one group, after they produced', async () => {
    const writer = new RecordingWriter();
    const order = new WriteOrder(writer);
    writer.changed.push('acct-1');
    const first = order.enqueue(0, [update('1.1.1.1', [['acct-1', 10]])], new Map([['s|CLEARED', 1]]));
    first.turn.done();
    writer.holdWrites();
    const firstDurable = order.readyToWrite(first).then(() => order.write(first));
    await tick();
    // two more batches are processed while the first group is being written
    writer.changed.push('acct-2', 'acct-1');
    const second = order.enqueue(0, [update('1.1.1.1', [['acct-2', 20]])], new Map([['s|CLEARED', 2]]));
    const third = order.enqueue(0, [update('1.1.1.1', [['acct-1', 30]], 5)], new Map());
    await second.turn.ready;
    second.turn.done();
    const secondDurable = order.readyToWrite(second).then(() => order.write(second));
    let thirdReady = false;
    const thirdDurable = order.readyToWrite(third).then(() => {
      thirdReady = true;
      return order.write(third);
    });
    writer.releaseWrites();
    await firstDurable;
    await tick();
    // the second group waits for its last batch's produce
    expect(thirdReady).toBe(false);
    expect(writer.writes).toHaveLength(1);
    third.turn.done();
    await Promise.all([secondDurable, thirdDurable]);
    expect(writer.snapshots).toEqual([['acct-1'], ['acct-2', 'acct-1']]);
    expect(writer.writes).toHaveLength(2);
    const group = writer.writes[1]!;
    expect(group.entities).toHaveLength(1);
    expect([...group.entities[0]!.sightings]).toEqual([
      ['acct-2', 20],
      ['acct-1', 30],
    ]);
    expect(group.entities[0]!.trimBefore).toBe(5);
    expect([...group.outcomeCounts]).toEqual([['s|CLEARED', 2]]);
  });

  it('a failed write is attempted again by its batches and written once', async () => {
    const writer = new RecordingWriter();
    const order = new WriteOrder(writer);
    writer.changed.push('acct-1');
    const a = order.enqueue(0, [], new Map());
    const b = order.enqueue(0, [], new Map());
    a.turn.done();
    b.turn.done();
    writer.failNext = 1;
    await order.readyToWrite(a);
    await order.readyToWrite(b);
    await expect(Promise.all([order.write(a), order.write(b)])).rejects.toThrow('redis is out');
    await Promise.all([order.write(a), order.write(b)]);
    await order.write(a);
    expect(writer.writes).toHaveLength(1);
    expect(writer.snapshots).toEqual([['acct-1']]);
  });

  it('a batch that gives up abandons its group and every later one; other partitions go on', async () => {
    const writer = new RecordingWriter();
    const order = new WriteOrder(writer);
    const a = order.enqueue(0, [], new Map());
    const b = order.enqueue(0, [], new Map());
    const other = order.enqueue(1, [], new Map());
    a.turn.done();
    await expect(b.turn.ready).resolves.toBeUndefined();
    b.turn.fail(new Error('revoked'));
    await expect(order.readyToWrite(a)).rejects.toBeInstanceOf(WriteGroupAbandoned);
    await expect(order.write(a)).rejects.toBeInstanceOf(WriteGroupAbandoned);
    // the partition is forgotten; what was processed before starts no group
    order.reset(0);
    await expect(order.readyToWrite(b)).rejects.toBeInstanceOf(WriteGroupAbandoned);
    other.turn.done();
    await order.readyToWrite(other);
    await order.write(other);
    expect(writer.writes).toHaveLength(1);
  });

  it('forgetting a partition while a group waits for its batches abandons it', async () => {
    const writer = new RecordingWriter();
    const order = new WriteOrder(writer);
    const a = order.enqueue(0, [], new Map());
    const waiting = order.readyToWrite(a);
    order.reset(0);
    a.turn.done();
    await waiting;
    await expect(order.write(a)).rejects.toBeInstanceOf(WriteGroupAbandoned);
    expect(writer.writes).toHaveLength(0);
  });
});

describe('merged entity updates', () => {
  it('keep the latest sighting per account and ask for every trim and cap any batch asked for', () => {
    const merged = mergeEntityUpdates([
      { ...update('a', [['x', 5]], 1), trim: true },
      update('b', [['y', 7]]),
      {
        ...update(
          'a',
          [
            ['x', 3],
            ['z', 9],
          ],
          4,
        ),
        overCap: true,
        newlyCapped: true,
      },
    ]);
    expect(merged).toHaveLength(2);
    const a = merged.find((u) => u.ref.id === 'a')!;
    expect([...a.sightings]).toEqual([
      ['x', 5],
      ['z', 9],
    ]);
    expect(a).toMatchObject({ trimBefore: 4, trim: true, overCap: true, newlyCapped: true });
  });
});
