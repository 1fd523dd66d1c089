// The consumer group's partition assignment: one member owns partition p of every topic it reads.
// Every input topic is keyed by account id with the same partition count, so an account's events
// of all families, its review outcomes and the other side of its contracts all arrive at the
// member that holds its features in memory. kafkajs's default round-robin assigner spreads each
// topic separately; this one assigns partition numbers.
//
// Sticky: each member says which partition numbers it holds now, and keeps them while it has no
// more than its share, so a rebalance moves (and empties the memory of) as few as it can.
import { AssignerProtocol, type Assigner, type PartitionAssigner } from 'kafkajs';

const { MemberMetadata, MemberAssignment } = AssignerProtocol;
export const CO_PARTITIONED = 'FairflagCoPartitioned';

export class PartitionCountMismatchError extends Error {
  constructor(counts: ReadonlyMap<string, number>) {
    super(
      `every topic fairflag consumes must have the same number of partitions (an account's events ` +
        `of every family must reach the one instance that owns it); found ${[...counts]
          .map(([t, n]) => `${t}: ${n}`)
          .join(', ')}`,
    );
    this.name = 'PartitionCountMismatchError';
  }
}

/** The single partition count of all topics, or a PartitionCountMismatchError. */
export function commonPartitionCount(counts: ReadonlyMap<string, number>): number {
  const distinct = new Set(counts.values());
  if (distinct.size !== 1) throw new PartitionCountMismatchError(counts);
  return [...distinct][0]!;
}

/**
 * Partition numbers per member: previous owners keep theirs up to their share (the first
 * `extra` members in id order may hold one more), the rest go to the members holding fewest.
 */
export function assignPartitions(
  partitions: number,
  members: readonly { memberId: string; holds: readonly number[] }[],
): Map<string, number[]> {
  const ids = members.map((m) => m.memberId).sort();
  const out = new Map<string, number[]>(ids.map((id) => [id, []]));
  if (!ids.length) return out;
  const base = Math.floor(partitions / ids.length);
  const extra = partitions % ids.length;
  const share = new Map(ids.map((id, i) => [id, base + (i < extra ? 1 : 0)]));
  const taken = new Set<number>();
  for (const m of [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1))) {
    for (const p of [...m.holds].sort((a, b) => a - b)) {
      const mine = out.get(m.memberId)!;
      if (p < 0 || p >= partitions || taken.has(p) || mine.length >= share.get(m.memberId)!) continue;
      mine.push(p);
      taken.add(p);
    }
  }
  for (let p = 0; p < partitions; p++) {
    if (taken.has(p)) continue;
    const to = ids.find((id) => out.get(id)!.length < share.get(id)!)!;
    out.get(to)!.push(p);
    taken.add(p);
  }
  for (const list of out.values()) list.sort((a, b) => a - b);
  return out;
}

/**
 * The assigner for kafkajs's `partitionAssigners`; `holding()` says which partition numbers this
 * member owns now (sent with its join request).
 */
export function coPartitionedAssigner(holding: () => readonly number[]): PartitionAssigner {
  return ({ cluster }): Assigner => ({
    name: CO_PARTITIONED,
    version: 1,
    async assign({ members, topics }) {
      const counts = new Map(topics.map((t) => [t, cluster.findTopicPartitionMetadata(t).length]));
      const partitions = commonPartitionCount(counts);
      const holds = members.map((m) => ({
        memberId: m.memberId,
        holds: decodeHolding(m.memberMetadata),
      }));
      const byMember = assignPartitions(partitions, holds);
      return [...byMember].map(([memberId, parts]) => ({
        memberId,
        memberAssignment: MemberAssignment.encode({
          version: 1,
          assignment: Object.fromEntries(topics.map((t) => [t, parts])),
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: CO_PARTITIONED,
        metadata: MemberMetadata.encode({
          version: 1,
          topics,
          userData: Buffer.from(JSON.stringify(holding())),
        }),
      };
    },
  });
}

function decodeHolding(metadata: Buffer): number[] {
  try {
    const m = MemberMetadata.decode(metadata);
    const held = m?.userData?.length ? (JSON.parse(m.userData.toString('utf8')) as unknown) : [];
    return Array.isArray(held) ? held.filter((p): p is number => Number.isInteger(p)) : [];
  } catch {
    // a member of another version: it simply holds nothing we can keep for it
    return [];
  }
}
