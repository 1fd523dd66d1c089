// How far a consumer group is behind, as the broker has it: the group's committed offsets against
// each partition's high watermark. Read through the admin API, so it is known for every partition
// whoever owns it, including one whose owner has stopped consuming.
import type { Admin } from 'kafkajs';
import type { Config } from '../../config/schema.js';

export interface PartitionLag {
  topic: string;
  partition: number;
  /** Messages on the partition the group has not committed. */
  lag: number;
}

export async function groupLag(
  admin: Admin,
  groupId: string,
  topics: string[],
  offsetReset: Config['kafka']['offsetReset'],
): Promise<PartitionLag[]> {
  const [committed, ends] = await Promise.all([
    admin.fetchOffsets({ groupId, topics }),
    Promise.all(topics.map(async (t) => [t, await admin.fetchTopicOffsets(t)] as const)),
  ]);
  const at = new Map(
    committed.flatMap(({ topic, partitions }) =>
      partitions.map((p) => [`${topic}/${p.partition}`, BigInt(p.offset)] as const),
    ),
  );
  const out: PartitionLag[] = [];
  for (const [topic, partitions] of ends)
    for (const p of partitions) {
      const high = BigInt(p.high);
      // no commit yet (-1): the group starts, or started, where offsetReset says
      const from = at.get(`${topic}/${p.partition}`) ?? -1n;
      const start = from >= 0n ? from : offsetReset === 'earliest' ? BigInt(p.low) : high;
      out.push({ topic, partition: p.partition, lag: high > start ? Number(high - start) : 0 });
    }
  return out;
}
