// kafka.offsetReset: where a consumer group with no committed offset starts reading.
import { afterAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/events.js';
import { Codec } from '../../src/kafka/codec.js';
import { Processor, ensureTopics, kafkaClient } from '../../src/kafka/processor.js';
import { publishActivity } from '../../src/kafka/topic-tools.js';
import { createLogger } from '../../src/runtime/logger.js';
import { isolatedConfig } from '../support/config.js';

const now = Date.now();
let seq = 0;
const login = (accountId: string, at: number): ActivityEvent => ({
  family: 'login',
  event: {
    eventId: `e-reset-${++seq}`,
    accountId,
    occurredAt: at,
    outcome: 'SUCCESS',
    ip: '216.160.83.56',
    deviceId: 'dev-1',
    sessionId: `s-reset-${seq}`,
  },
});

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('kafka.offsetReset', () => {
  const loaded = isolatedConfig('offset-reset', { FAIRFLAG__kafka__offsetReset: 'latest' });
  const c = loaded.config;
  const log = createLogger('offset-reset-test');
  log.level = process.env['FAIRFLAG_LOG_LEVEL'] ?? 'error';
  const kafka = kafkaClient(c.kafka, log, '-test');
  const producer = kafka.producer();
  let proc: Processor | undefined;
  afterAll(async () => {
    await proc?.stop();
    await producer.disconnect();
  });

  it('latest: a new group skips what was on the topics before it joined and processes what comes after', async () => {
    expect(c.kafka.offsetReset).toBe('latest');
    await producer.connect();
    const codec = await Codec.connect(c);
    await ensureTopics(kafka, c.topics);
    const before = [1, 2, 3].map((i) => login('acct-before', now - 10 * 60_000 + i));
    await publishActivity(producer, codec, c.topics, before);

    proc = await Processor.start({ loaded, log, http: false });
    // kafkajs resolves "latest" on its first fetch after the join, a moment after start returns:
    // a probe is published until one is processed, so everything after it is surely read
    const p = proc;
    await until('a probe to be processed', async () => {
      await publishActivity(producer, codec, c.topics, [login('acct-probe', Date.now() - 1000)]);
      await new Promise((r) => setTimeout(r, 500));
      return p.counts.processed > 0;
    });
    const after = [1, 2, 3, 4].map((i) => login('acct-after', now - 5 * 60_000 + i));
    await publishActivity(producer, codec, c.topics, after);
    const probeSessions = () => p.storedAccount('acct-probe').then((a) => a.events.get('session')?.size ?? 0);
    await until('the later events', async () => p.counts.processed >= (await probeSessions()) + 4);

    expect((await p.storedAccount('acct-after')).events.get('session')?.size).toBe(4);
    expect((await p.storedAccount('acct-before')).events.get('session')).toBeUndefined();
    expect(p.counts.processed).toBe((await probeSessions()) + 4);
  });
});
