// A case tool's side of risk.flags: read each review flag and print one line a reviewer can act
// on. Uses only Kafka and the schema registry, as a tool outside fairflag would.
//
//   tsx examples/case-tool-consumer.ts [--from-beginning] [--max N]
//
// Environment: FAIRFLAG_KAFKA_BROKERS (comma-separated), FAIRFLAG_REGISTRY_URL, and optionally
// FLAGS_TOPIC (risk.flags) and CASE_TOOL_GROUP (case-tool).
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';

/** The fields of schemas/review-flag.avsc this tool shows. */
interface ReviewFlag {
  flagId: string;
  revision: number;
  accountId: string;
  reviewQueue: string;
  severity: string;
  score: number;
  reviewThreshold: number;
  updatedAt: number;
  historyUnknown: boolean;
  signals: { id: string; summary: string }[];
  mitigations: { id: string; effect: string }[];
}

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (!v) throw new Error(`set ${name}`);
  return v;
};
const args = process.argv.slice(2);
const max = args.includes('--max') ? Number(args[args.indexOf('--max') + 1]) : Infinity;

/** One line per flag: who, which queue, how urgent, and why (signals, then what dampened it). */
function reviewerLine(f: ReviewFlag): string {
  const why = f.signals.map((s) => `${s.id} (${s.summary})`).join('; ');
  const dampened =
    f.mitigations.map((m) => m.id).join(', ') || (f.historyUnknown ? 'history unknown' : 'none');
  return (
    `[${f.severity.toUpperCase()}] ${f.reviewQueue}: review account ${f.accountId} ` +
    `(flag ${f.flagId} rev ${f.revision}, score ${f.score.toFixed(2)} of ${f.reviewThreshold}, ` +
    `${new Date(f.updatedAt).toISOString()}): ${why}; mitigations: ${dampened}`
  );
}

const kafka = new Kafka({
  clientId: 'case-tool-consumer',
  brokers: env('FAIRFLAG_KAFKA_BROKERS').split(','),
  logLevel: logLevel.ERROR,
});
const registry = new SchemaRegistry({ host: env('FAIRFLAG_REGISTRY_URL') });
const consumer = kafka.consumer({ groupId: env('CASE_TOOL_GROUP', 'case-tool') });

let seen = 0;
const stop = async () => {
  await consumer.disconnect();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

await consumer.connect();
await consumer.subscribe({
  topic: env('FLAGS_TOPIC', 'risk.flags'),
  fromBeginning: args.includes('--from-beginning'),
});
await consumer.run({
  eachMessage: async ({ message }) => {
    if (!message.value || seen >= max) return;
    // the writer's schema id is in the message; the registry client fetches and caches it
    const flag = (await registry.decode(message.value)) as ReviewFlag;
    console.log(reviewerLine(flag));
    if (++seen >= max) setImmediate(() => void stop());
  },
});
