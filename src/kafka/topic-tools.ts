// Small Kafka helpers for tools (demo, replay, tests): publish events, wait for a consumer group
// to catch up, and read a topic between two sets of offsets.
import type { Admin, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Config } from '../../config/schema.js';
import type { ActivityEvent } from '../domain/events.js';
import { topicOf, type Codec } from './codec.js';

export type Offsets = Map<number, bigint>;

/** Encodes events with the registry and produces them to their family's topic, keyed by account. */
export async function publishActivity(
  producer: Producer,
  codec: Codec,
  topics: Config['topics'],
  events: ActivityEvent[],
): Promise<void> {
  const byTopic = new Map<string, { key: string; value: Buffer }[]>();
  for (const e of events) {
    const topic = topicOf(e.family, topics);
    const value = await codec.encode(e.family, e.event);
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), { key: e.event.accountId, value }]);
  }
  await producer.sendBatch({
    acks: -1,
    topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
  });
}

export async function endOffsets(admin: Admin, topic: string): Promise<Offsets> {
  // right after a topic is created the client's metadata may still name no leader: retry those
  for (let attempt = 1; ; attempt++) {
    try {
      const parts = await admin.fetchTopicOffsets(topic);
      return new Map(parts.map((p) => [p.partition, BigInt(p.high)]));
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable || attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

/**
 * Waits until the group has committed every partition of the topics up to their end. Caught up
 * with the ends it read first, it reads them again: consuming one topic may have produced to
 * another (the other side of a contract), and that must be consumed too.
 */
export async function waitForCatchUp(
  admin: Admin,
  groupId: string,
  topics: string[],
  timeoutMs: number,
  onProgress?: (behind: number) => void,
): Promise<void> {
  const targets = new Map<string, Offsets>();
  const readEnds = async () => {
    let moved = false;
    for (const t of topics) {
      const ends = await endOffsets(admin, t);
      const before = targets.get(t);
      if (!before || [...ends].some(([p, end]) => before.get(p) !== end)) moved = true;
      targets.set(t, ends);
    }
    return moved;
  };
  await readEnds();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const committed = await admin.fetchOffsets({ groupId, topics });
    let behind = 0n;
    for (const { topic, partitions } of committed) {
      const target = targets.get(topic)!;
      for (const p of partitions) {
        const end = target.get(p.partition) ?? 0n;
        const at = p.offset === '-1' ? 0n : BigInt(p.offset);
        if (at < end) behind += end - at;
      }
    }
    onProgress?.(Number(behind));
    if (behind === 0n && !(await readEnds())) return;
    if (Date.now() > deadline)
      throw new Error(`group ${groupId} still ${behind} message(s) behind after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Reads messages of a topic with from <= offset < to, per partition. */
/** Each partition's first offset at or after `ts` (epoch ms), or its end when nothing is that late. */
export async function offsetsAt(admin: Admin, topic: string, ts: number): Promise<Offsets> {
  const end = await endOffsets(admin, topic);
  const parts = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
  // -1: no message at or after the time, so the range ends at the partition's end
  return new Map(
    parts.map((p) => [p.partition, p.offset === '-1' ? (end.get(p.partition) ?? 0n) : BigInt(p.offset)]),
  );
}

export async function readRange(
  kafka: Kafka,
  topic: string,
  from: Offsets,
  to: Offsets,
  timeoutMs = 30_000,
): Promise<(KafkaMessage & { partition: number })[]> {
  const wanted = [...to].filter(([p, end]) => end > (from.get(p) ?? 0n));
  if (!wanted.length) return [];
  const out: (KafkaMessage & { partition: number })[] = [];
  const consumer = kafka.consumer({
    groupId: `fairflag-reader-${process.pid}-${Date.now()}-${Math.random()}`,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Set<number>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reading ${topic} timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const [p] of wanted) consumer.seek({ topic, partition: p, offset: String(from.get(p) ?? 0n) });
      });
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const end = to.get(partition) ?? 0n;
            const off = BigInt(message.offset);
            if (off >= (from.get(partition) ?? 0n) && off < end) out.push({ ...message, partition });
            if (off + 1n >= end) done.add(partition);
            if (wanted.every(([p]) => done.has(p))) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}
