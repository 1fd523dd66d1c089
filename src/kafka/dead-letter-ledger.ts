// Nothing dead-lettered twice, across crashes and rebalances. A batch's dead letters are produced
// before its offsets are committed, so a processor killed in between (or a batch given up in a
// rebalance) leaves dead letters whose source offsets its partition's next owner reads again.
//
// Before producing dead letters for a source topic-partition, the processor commits the offset
// the partition is already at again, with metadata: an intent naming the dead-letter partition's
// offset from which those dead letters can be (`from`, a lower bound) and the highest source offset
// they cover (`through`). The batch's own commit clears it. A new owner (or the same processor
// after a failed batch) finds an intent left over on the group's committed offset, reads the
// dead-letter partition from `from` to its end, and skips the source offsets found there (each dead
// letter names its source in a header). A source partition's dead letters all go to one
// dead-letter partition (source partition modulo their count), so one partition is read.
import type { Admin, Kafka } from 'kafkajs';
import { SOURCE_HEADER } from './dead-letters.js';

export interface Intent {
  /** Offset of the dead-letter partition at or before which none of the intended dead letters lie. */
  from: bigint;
  /** Highest source offset whose dead letter may have been produced. */
  through: bigint;
}

const PREFIX = 'fairflag-dlq-intent:v1 ';

export function intentMetadata(i: Intent): string {
  return `${PREFIX}${JSON.stringify({ from: String(i.from), through: String(i.through) })}`;
}

export function parseIntent(metadata: string | null | undefined): Intent | undefined {
  if (!metadata?.startsWith(PREFIX)) return undefined;
  try {
    const o = JSON.parse(metadata.slice(PREFIX.length)) as { from?: unknown; through?: unknown };
    if (typeof o.from !== 'string' || typeof o.through !== 'string') return undefined;
    return { from: BigInt(o.from), through: BigInt(o.through) };
  } catch {
    return undefined;
  }
}

/** The intent left on a topic-partition's committed offset, if any. */
export async function readIntent(
  admin: Admin,
  groupId: string,
  topic: string,
  partition: number,
): Promise<Intent | undefined> {
  const res = await admin.fetchOffsets({ groupId, topics: [topic] });
  const p = res.find((t) => t.topic === topic)?.partitions.find((x) => x.partition === partition);
  return parseIntent(p?.metadata);
}

/** A time limit that counts as an outage (failure.ts judges TimeoutError so). */
class ReadTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/**
 * Source offsets (of `source.topic`/`source.partition`, at or after `source.first`) that already
 * have a dead letter in partition `partition` of the dead-letter topic at or after `from`.
 */
export async function deadLetteredSince(
  kafka: Kafka,
  admin: Admin,
  deadLetterTopic: string,
  partition: number,
  from: bigint,
  source: { topic: string; partition: number; first: bigint },
  timeoutMs = 60_000,
): Promise<Set<string>> {
  const found = new Set<string>();
  const ends = await admin.fetchTopicOffsets(deadLetterTopic);
  const end = BigInt(ends.find((p) => p.partition === partition)?.high ?? '0');
  if (from >= end) return found;
  const prefix = `${source.topic}/${source.partition}@`;
  const groupId = `fairflag-dlq-check-${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: deadLetterTopic, fromBeginning: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ReadTimeout(`reading ${deadLetterTopic}/${partition} from ${from} timed out`)),
        timeoutMs,
      );
      consumer.on(consumer.events.GROUP_JOIN, () =>
        consumer.seek({ topic: deadLetterTopic, partition, offset: String(from) }),
      );
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            if (batch.partition !== partition) return;
            for (const m of batch.messages) {
              const where = m.headers?.[SOURCE_HEADER]?.toString();
              if (where?.startsWith(prefix)) {
                const offset = where.slice(prefix.length);
                if (/^\d+$/.test(offset) && BigInt(offset) >= source.first) found.add(offset);
              }
              if (BigInt(m.offset) + 1n >= end) {
                clearTimeout(timer);
                resolve();
              }
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  return found;
}
