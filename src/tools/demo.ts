// The README's first command: start the processor against the local stack, publish the reference
// scenarios (and a few bad messages), wait until everything is consumed, print what happened.
import type { ReviewFlag } from '../domain/flags.js';
import { scoreAccount } from '../engine/engine.js';
import { Processor, consumedTopics, kafkaClient } from '../kafka/processor.js';
import { endOffsets, publishActivity, readRange, waitForCatchUp } from '../kafka/topic-tools.js';
import type { LoadedConfig } from '../runtime/config-loader.js';
import type { Logger } from '../runtime/logger.js';
import { HOUR, DAY, accountTakeover, travellingFreelancer, type Scenario } from '../scenarios/reference.js';
import { formatDecision, formatFlag } from './format.js';

export async function runDemo(given: LoadedConfig, log: Logger, out: (s: string) => void): Promise<number> {
  const runId = Date.now().toString(36);
  // Each run keeps its features under its own key prefix: replaying the scenarios again must not
  // meet the previous run's takeover on the same attacker IP (that would rightly look like
  // multiple accounts).
  const loaded: LoadedConfig = {
    ...given,
    config: {
      ...given.config,
      redis: { ...given.config.redis, keyPrefix: `${given.config.redis.keyPrefix}-demo-${runId}` },
      // the demo plays the producers of the input topics too: their subjects are registered here
      registry: { ...given.config.registry, registerInputSubjects: true },
    },
  };
  const { config } = loaded;
  out(
    `fairflag demo: Kafka ${config.kafka.brokers.join(',')}, registry ${config.registry.url}, Redis ${config.redis.url}`,
  );
  out(`config ${loaded.version} from ${loaded.sources.join(' + ')}\n`);
  const proc = await Processor.start({ loaded, log, http: true });
  const kafka = kafkaClient(config.kafka, log, '-demo');
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  try {
    const now = Date.now();
    const scenarios: Scenario[] = [
      travellingFreelancer(now - 11 * DAY, runId),
      accountTakeover(now - 2 * HOUR, runId),
    ];
    const flagsFrom = await endOffsets(admin, config.topics.flags);
    const dlqFrom = await endOffsets(admin, config.topics.deadLetter);
    const before = { ...proc.counts };
    const topics = consumedTopics(config.topics);
    const phases = Math.max(...scenarios.map((s) => s.phases.length));
    for (let i = 0; i < phases; i++) {
      const events = scenarios.flatMap((s) => s.phases[i] ?? []);
      out(`publishing phase ${i + 1}: ${events.length} events`);
      await publishActivity(producer, proc.codec, config.topics, events);
      await waitForCatchUp(admin, config.kafka.groupId, topics, 120_000);
    }
    // Bad input is dead-lettered with its reason; the good events around it are unaffected.
    await producer.send({
      topic: config.topics.login,
      messages: [
        { key: 'demo', value: Buffer.from('not avro at all') },
        {
          key: 'demo',
          value: await proc.codec.encode('login', {
            eventId: `bad-${runId}`,
            accountId: 'acct-bad',
            occurredAt: Date.now(),
            outcome: 'SUCCESS',
            ip: '999.1.1.1',
            deviceId: null,
            sessionId: null,
          }),
        },
      ],
    });
    await waitForCatchUp(admin, config.kafka.groupId, topics, 60_000);

    const flags = await Promise.all(
      (
        await readRange(kafka, config.topics.flags, flagsFrom, await endOffsets(admin, config.topics.flags))
      ).map(async (m) => (await proc.codec.decodeAny(m.value!)) as ReviewFlag),
    );
    const dead = await Promise.all(
      (
        await readRange(
          kafka,
          config.topics.deadLetter,
          dlqFrom,
          await endOffsets(admin, config.topics.deadLetter),
        )
      ).map(
        async (m) =>
          (await proc.codec.decodeAny(m.value!)) as {
            reason: string;
            detail: string;
            sourceTopic: string;
            sourceOffset: string;
          },
      ),
    );

    let ok = true;
    for (const s of scenarios) {
      const mine = flags.filter((f) => f.accountId === s.accountId);
      out(`\nScenario ${s.name}: ${s.title} (${s.accountId}, ${s.phases.flat().length} events)`);
      out(`  expected: ${s.expected}`);
      if (mine.length === 0) out('  result:   no flag');
      else
        out(`  result:   ${mine.length} flag message(s)\n${mine.map((f) => formatFlag(f, '  ')).join('\n')}`);
      // what an analyst's explain would show: remembered observations, mitigations, the score
      const stored = await proc.storedAccount(s.accountId);
      const decisions = scoreAccount(stored, stored.watermark, proc.activePolicy);
      out(`  score now, from what the account remembers:`);
      out(
        decisions.length
          ? decisions.map((d) => formatDecision(d, '    ')).join('\n')
          : '    no signal observed',
      );
      if (s.name === 'A' && mine.length !== 0) ok = false;
      if (
        s.name === 'B' &&
        !(mine.length === 1 && mine[0]!.severity === 'high' && mine[0]!.reviewQueue === 'account_security')
      )
        ok = false;
    }
    out(`\nBad input: ${dead.length} message(s) on ${config.topics.deadLetter}`);
    for (const d of dead) out(`  ${d.reason}: ${d.detail} (from ${d.sourceTopic} offset ${d.sourceOffset})`);
    const c = proc.counts;
    out(
      `\nProcessed ${c.processed - before.processed} events, ${c.deadLettered - before.deadLettered} dead-lettered, ${c.flagsEmitted - before.flagsEmitted} flag message(s) emitted.`,
    );
    out(
      ok
        ? 'Both scenarios behaved as shared/scenarios.md expects.'
        : 'A scenario did NOT behave as expected.',
    );
    return ok ? 0 : 1;
  } finally {
    await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
    await proc.stop();
  }
}
