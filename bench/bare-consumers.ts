// The benchmark's limit: a bare consumer that only reads and decodes, one function per Kafka client,
// written the same way so that their figures compare. Each reads the given topics from the
// beginning with a fresh consumer group, decodes every value with the codec fairflag uses, stops
// when it has seen `total` messages, closes, and returns events per second, timed from the first
// message received to the last one decoded.
import { Consumer } from '@platformatic/kafka';
import type { Kafka } from 'kafkajs';
import type { Family } from '../src/domain/events.js';
import type { Codec } from '../src/kafka/codec.js';

export interface BareRun {
  groupId: string;
  /** topic name -> the family its values are decoded as */
  families: Record<string, Family>;
  /** messages in those topics; the run ends when it has seen this many */
  total: number;
  codec: Pick<Codec, 'decodeAs'>;
}

/** kafkajs, the client fairflag uses: batches, the same number in flight as fairflag's consumer. */
export async function bareKafkajs(
  kafka: Kafka,
  run: BareRun & { partitionsConsumedConcurrently: number },
): Promise<number> {
  const { families, total, codec } = run;
  const consumer = kafka.consumer({ groupId: run.groupId });
  await consumer.connect();
  let count = 0;
  let start = 0;
  let end = 0;
  try {
    await consumer.subscribe({ topics: Object.keys(families), fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          partitionsConsumedConcurrently: run.partitionsConsumedConcurrently,
          eachBatch: async ({ batch }) => {
            if (!start) start = performance.now();
            for (const m of batch.messages) await codec.decodeAs(families[batch.topic]!, m.value!);
            count += batch.messages.length;
            if (count >= total && !end) {
              end = performance.now();
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return total / ((end - start) / 1000);
}

/**
 * @platformatic/kafka (pure JS): one message stream over all the topics' partitions, values as raw
 * Buffers (no deserialiser given), each awaited in turn like the kafkajs loop above.
 */
export async function barePlatformaticKafka(
  run: BareRun & { brokers: string[]; clientId: string },
): Promise<number> {
  const { families, total, codec } = run;
  const consumer = new Consumer({
    clientId: run.clientId,
    bootstrapBrokers: run.brokers,
    groupId: run.groupId,
    // Fetch sizes as kafkajs's consumer defaults (the bare kafkajs consumer sets none): minBytes 1,
    // maxBytes 10 MiB, maxBytesPerPartition 1 MiB, maxWaitTime 5 s. @platformatic/kafka's own
    // defaults are the same except maxBytesPerPartition (it would use maxBytes, 10 MiB).
    minBytes: 1,
    maxBytes: 10 * 1024 * 1024,
    maxBytesPerPartition: 1024 * 1024,
    maxWaitTime: 5000,
  });
  let count = 0;
  let start = 0;
  let end = 0;
  try {
    const stream = await consumer.consume({
      topics: Object.keys(families),
      // a fresh group: from the beginning, like kafkajs's fromBeginning
      mode: 'earliest',
      // committed after each fetch, as kafkajs commits after each batch by default
      autocommit: true,
    });
    for await (const m of stream) {
      if (!start) start = performance.now();
      await codec.decodeAs(families[m.topic]!, m.value);
      if (++count >= total) {
        end = performance.now();
        break; // ends and destroys the stream (its connections close)
      }
    }
    if (!stream.closed) await new Promise<void>((resolve) => stream.once('close', () => resolve()));
    if (count < total)
      throw new Error(`@platformatic/kafka stream ended after ${count} of ${total} messages`);
  } finally {
    // leaves the group and closes the client's connections
    await consumer.close(true);
  }
  return total / ((end - start) / 1000);
}
