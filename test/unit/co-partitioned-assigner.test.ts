// The consumer group's assignment: partition numbers, not topic-partitions, so one member owns
// partition p of every topic; sticky, so a rebalance moves as few as it can.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PartitionCountMismatchError,
  assignPartitions,
  commonPartitionCount,
} from '../../src/kafka/co-partitioned-assigner.js';

const members = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 6 });

describe('co-partitioned assignment', () => {
  it('gives every partition number to exactly one member, each within one of its share', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        members.chain((ids) =>
          fc.tuple(
            fc.constant(ids),
            fc.array(fc.array(fc.integer({ min: -2, max: 70 }), { maxLength: 10 }), {
              minLength: ids.length,
              maxLength: ids.length,
            }),
          ),
        ),
        (partitions, [ids, holds]) => {
          const out = assignPartitions(
            partitions,
            ids.map((memberId, i) => ({ memberId, holds: holds[i]! })),
          );
          const all = [...out.values()].flat().sort((a, b) => a - b);
          expect(all).toEqual(Array.from({ length: partitions }, (_, p) => p));
          const sizes = [...out.values()].map((l) => l.length);
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
          expect([...out.keys()].sort()).toEqual([...ids].sort());
        },
      ),
    );
  });

  it('keeps what a member held when it joins again with the same share (sticky)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 48 }), members, (partitions, ids) => {
        const first = assignPartitions(
          partitions,
          ids.map((memberId) => ({ memberId, holds: [] })),
        );
        // the same members again, each saying what it holds: nothing moves
        const again = assignPartitions(
          partitions,
          ids.map((memberId) => ({ memberId, holds: first.get(memberId)! })),
        );
        expect(again).toEqual(first);
      }),
    );
  });

  it('moves only what it must when a member joins', () => {
    const before = assignPartitions(6, [
      { memberId: 'a', holds: [] },
      { memberId: 'b', holds: [] },
    ]);
    const after = assignPartitions(6, [
      { memberId: 'a', holds: before.get('a')! },
      { memberId: 'b', holds: before.get('b')! },
      { memberId: 'c', holds: [] },
    ]);
    const moved = [0, 1, 2, 3, 4, 5].filter(
      (p) => !(before.get('a')!.includes(p) ? after.get('a')! : after.get('b')!).includes(p),
    );
    // c gets two: exactly two partitions change owner
    expect(after.get('c')).toHaveLength(2);
    expect(moved).toHaveLength(2);
  });

  it('refuses topics whose partition counts differ, naming every topic and count', () => {
    expect(
      commonPartitionCount(
        new Map([
          ['a', 3],
          ['b', 3],
        ]),
      ),
    ).toBe(3);
    expect(() =>
      commonPartitionCount(
        new Map([
          ['activity.login', 3],
          ['activity.ip', 6],
        ]),
      ),
    ).toThrow(PartitionCountMismatchError);
    expect(() =>
      commonPartitionCount(
        new Map([
          ['activity.login', 3],
          ['activity.ip', 6],
        ]),
      ),
    ).toThrow(/same number of partitions.*activity\.login: 3, activity\.ip: 6/);
  });
});
