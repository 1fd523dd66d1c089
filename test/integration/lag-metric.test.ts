// fairflag_consumer_lag_messages after a rebalance: an instance reports the partitions it owns,
// not the last value of a partition it gave up (the lag alert would read that as lag).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/events.js';
import { Processor } from '../../src/kafka/processor.js';
import { createLogger } from '../../src/runtime/logger.js';
import { accountsOn, isolatedConfig } from '../support/config.js';
import { Harness } from '../support/pipeline.js';

let h: Harness;
let second: Processor | undefined;

const logins = (tag: string): ActivityEvent[] =>
  [0, 1, 2].map((p) => {
    const accountId = accountsOn(p, 1, `acct-lag-${p}`)[0]!;
    return {
      family: 'login',
      event: {
        eventId: `${tag}-${p}`,
        accountId,
        occurredAt: Date.now() - 60_000,
        outcome: 'SUCCESS',
        ip: '175.16.199.1',
        deviceId: null,
        sessionId: null,
      },
    };
  });

async function lagPartitions(p: Processor, topic: string): Promise<number[]> {
  const m = await p.metrics.registry.getSingleMetric('fairflag_consumer_lag_messages')!.get();
  return m.values
    .filter((v) => v.labels['topic'] === topic)
    .map((v) => Number(v.labels['partition']))
    .sort((a, b) => a - b);
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 90_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  h = await new Harness(isolatedConfig('lag-metric')).start();
});

afterAll(async () => {
  await second?.stop();
  await h?.stop();
});

describe('consumer lag gauge', () => {
  it('drops the partitions an instance gives up in a rebalance; their new owner reports them', async () => {
    await h.publish(logins('before'));
    await h.settle();
    expect(await lagPartitions(h.proc, h.topics.login)).toEqual([0, 1, 2]);

    const log = createLogger('fairflag-test');
    log.level = 'error';
    second = await Processor.start({ loaded: h.loaded, log, http: false });
    const other = second;
    await until(
      'the partitions to be shared',
      () =>
        other.ownedPartitions.length > 0 &&
        h.proc.ownedPartitions.length + other.ownedPartitions.length === 3,
    );
    const kept = h.proc.ownedPartitions;
    expect(kept.length).toBeLessThan(3);
    expect(await lagPartitions(h.proc, h.topics.login)).toEqual(kept);

    await h.publish(logins('after'));
    await h.settle();
    expect(await lagPartitions(other, h.topics.login)).toEqual(other.ownedPartitions);
    expect(await lagPartitions(h.proc, h.topics.login)).toEqual(h.proc.ownedPartitions);
  });
});
