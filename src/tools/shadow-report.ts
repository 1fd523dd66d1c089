// The shadow report: what a shadow candidate would have done differently from the live policy over
// a period, read from the flag topic and the shadow topic (the last flag per account and queue on
// each), in diff's terms: whom the candidate starts, stops or changes reviewing.
import type { Kafka } from 'kafkajs';
import type { ReviewFlag } from '../domain/flags.js';
import type { Codec } from '../kafka/codec.js';
import { offsetsAt, readRange } from '../kafka/topic-tools.js';
import { compareFlags, type FlagComparison } from './diff.js';

export interface ShadowReport extends FlagComparison {
  since: number;
  until: number;
  liveFlags: number;
  shadowFlags: number;
}

async function flagsBetween(kafka: Kafka, codec: Codec, topic: string, since: number, until: number) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const messages = await readRange(
      kafka,
      topic,
      await offsetsAt(admin, topic, since),
      await offsetsAt(admin, topic, until),
    );
    return Promise.all(messages.map(async (m) => (await codec.decodeAs('flag', m.value!)) as ReviewFlag));
  } finally {
    await admin.disconnect();
  }
}

export async function shadowReport(o: {
  kafka: Kafka;
  codec: Codec;
  liveTopic: string;
  shadowTopic: string;
  since: number;
  until: number;
}): Promise<ShadowReport> {
  const live = await flagsBetween(o.kafka, o.codec, o.liveTopic, o.since, o.until);
  const shadow = await flagsBetween(o.kafka, o.codec, o.shadowTopic, o.since, o.until);
  return {
    since: o.since,
    until: o.until,
    liveFlags: live.length,
    shadowFlags: shadow.length,
    ...compareFlags(live, shadow),
  };
}
