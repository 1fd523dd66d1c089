// A case tool's decision about a flag, sent to risk.review-outcomes: fairflag closes the flag
// (CLEARED or CONFIRMED), and a CLEARED pattern is not raised again for the cooldown.
//
//   tsx examples/outcome-producer.ts <flagId> <accountId> <CLEARED|CONFIRMED|NEEDS_MORE_INFO> [note]
//
// Environment: FAIRFLAG_KAFKA_BROKERS (comma-separated), FAIRFLAG_REGISTRY_URL, and optionally
// OUTCOMES_TOPIC (risk.review-outcomes).
import { randomUUID } from 'node:crypto';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka, Partitioners, logLevel } from 'kafkajs';

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (!v) throw new Error(`set ${name}`);
  return v;
};
const [flagId, accountId, outcome, noteCategory] = process.argv.slice(2);
const DECISIONS = ['CLEARED', 'CONFIRMED', 'NEEDS_MORE_INFO'];
if (!flagId || !accountId || !outcome || !DECISIONS.includes(outcome)) {
  console.error(`usage: outcome-producer.ts <flagId> <accountId> <${DECISIONS.join('|')}> [note]`);
  process.exit(2);
}

const topic = env('OUTCOMES_TOPIC', 'risk.review-outcomes');
const registry = new SchemaRegistry({ host: env('FAIRFLAG_REGISTRY_URL') });
// write with the subject's latest version (its owner registered it; here the case tools)
const schemaId = await registry.getLatestSchemaId(`${topic}-value`);
const value = await registry.encode(schemaId, {
  outcomeId: randomUUID(),
  flagId,
  accountId,
  outcome,
  noteCategory: noteCategory ?? null,
  decidedAt: Date.now(),
});

const kafka = new Kafka({
  clientId: 'outcome-producer',
  brokers: env('FAIRFLAG_KAFKA_BROKERS').split(','),
  logLevel: logLevel.ERROR,
});
// keyed by account with Kafka's default (murmur2) partitioner: the partition of that account's
// owner, as fairflag requires of every input
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true });
await producer.connect();
await producer.send({ topic, acks: -1, messages: [{ key: accountId, value }] });
await producer.disconnect();
console.log(`sent ${outcome} for flag ${flagId} (account ${accountId}) to ${topic}`);
