// The pipeline end to end on real Kafka, a real schema registry and real Redis: routing by
// family, flags in the registry's wire format, bad input to the dead-letter topic, restarts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/events.js';
import { Processor } from '../../src/kafka/processor.js';
import { createLogger } from '../../src/runtime/logger.js';
import { HOUR, MINUTE } from '../../src/scenarios/reference.js';
import { accountsOn, isolatedConfig } from '../support/config.js';
import { Harness } from '../support/pipeline.js';

const now = Date.now();
let seq = 0;
const id = (p: string) => `${p}-${++seq}`;

const login = (accountId: string, at: number, ip = '216.160.83.56'): ActivityEvent => ({
  family: 'login',
  event: {
    eventId: id('e-login'),
    accountId,
    occurredAt: at,
    outcome: 'SUCCESS',
    ip,
    deviceId: 'dev-1',
    sessionId: id('s'),
  },
});

function oneOfEach(tag: string): ActivityEvent[] {
  const acct = `acct-${tag}`;
  return [
    login(acct, now - 5 * MINUTE),
    {
      family: 'ip',
      event: {
        eventId: id('e-ip'),
        accountId: acct,
        occurredAt: now - 4 * MINUTE,
        ip: '89.160.20.112',
        source: 'web',
        deviceId: 'dev-1',
        sessionId: null,
      },
    },
    {
      family: 'payment',
      event: {
        eventId: id('e-pay'),
        accountId: acct,
        occurredAt: now - 3 * MINUTE,
        action: 'ADDED',
        methodId: 'pm-1',
        methodType: 'CARD',
        instrumentFingerprint: `fp-${tag}`,
        ip: null,
        deviceId: null,
      },
    },
    {
      family: 'contract',
      event: {
        eventId: id('e-ctr'),
        accountId: `client-${tag}`,
        occurredAt: now - 2 * MINUTE,
        contractId: `ctr-${tag}`,
        clientAccountId: `client-${tag}`,
        freelancerAccountId: acct,
        action: 'STARTED',
        amount: 500,
        currency: 'USD',
        rating: null,
        disputeReason: null,
        ip: null,
        deviceId: null,
      },
    },
    {
      family: 'account',
      event: {
        eventId: id('e-acct'),
        accountId: acct,
        occurredAt: now - 400 * 24 * HOUR,
        action: 'CREATED',
        accountType: 'FREELANCER',
        lifetimeCompletedContracts: null,
        lifetimePaidHours: null,
        lifetimeEarnings: null,
        ip: null,
        deviceId: null,
      },
    },
  ];
}

describe('pipeline on real Kafka, registry and Redis', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness(isolatedConfig('pipeline')).start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('routes one event of each family to its processor and leaves its trace in the features', async () => {
    await h.publish(oneOfEach('each'));
    await h.settle();
    const keys = await h.dumpKeys();
    const p = h.config.redis.keyPrefix;
    const acct = await h.proc.storedAccount('acct-each');
    // login: a session; ip observation: its IP among the account's values; payment: the method and
    // the instrument's accounts; contract: the record on both sides (the client's through the
    // counterpart topic); account: creation time.
    expect(acct.events.get('session')?.size).toBe(2); // the login and the IP observation
    expect([...acct.values.get('personalIp')!.keys()].sort()).toEqual(['216.160.83.56', '89.160.20.112']);
    expect([...acct.values.get('instrument')!.keys()]).toEqual(['fp-each']);
    expect(acct.events.get('methodAdded')?.size).toBe(1);
    expect(keys[`${p}:{p:fp-each}:a`]).toEqual(['acct-each', String(now - 3 * MINUTE)]);
    expect(acct.contractList().map((c) => c.contractId)).toEqual(['ctr-each']);
    const client = await h.proc.storedAccount('client-each');
    expect(client.contractList()).toEqual([
      expect.objectContaining({ contractId: 'ctr-each', role: 'client', counterpart: 'acct-each' }),
    ]);
    expect(acct.context.createdAt).toBe(now - 400 * 24 * HOUR);
    // Delivery is at least once: a rebalance while a batch's commit is in flight (a topic's
    // metadata settling right after creation is enough) hands the batch over again, so an event
    // may be processed twice, never zero times, and never dead-lettered.
    const metric = await h.proc.metrics.registry.getSingleMetric('fairflag_events_total')!.get();
    const count = (topic: string, outcome: string) =>
      metric.values.find((v) => v.labels['topic'] === topic && v.labels['outcome'] === outcome)?.value ?? 0;
    // the accounts are held in memory, each loaded (finding nothing) on its first event
    const cache = await h.proc.metrics.registry.getMetricsAsJSON();
    const value = (name: string, stored?: string) =>
      cache
        .find((m) => m.name === name)
        ?.values.find((v) => stored === undefined || v.labels['stored'] === stored)?.value ?? 0;
    expect(value('fairflag_accounts_in_memory')).toBeGreaterThanOrEqual(2);
    expect(value('fairflag_account_loads_total', 'none')).toBeGreaterThanOrEqual(2);
    for (const topic of [
      h.topics.login,
      h.topics.ip,
      h.topics.paymentMethod,
      h.topics.contract,
      h.topics.account,
    ]) {
      expect(count(topic, 'processed'), topic).toBeGreaterThanOrEqual(1);
      expect(count(topic, 'dead_lettered'), topic).toBe(0);
    }
  });

  it('dead-letters each kind of bad input with its reason and keeps processing the good events between', async () => {
    const codec = h.proc.codec;
    // the good accounts hash to partition 0, where every message of this test is sent
    const goodIds = accountsOn(0, 100, 'acct-good');
    const good = (n: number) => login(goodIds[n]!, now - MINUTE);
    const goodFrame = async (n: number) => codec.encode('login', good(n).event);
    const frame = (schemaId: number, body: Buffer) => {
      const header = Buffer.alloc(5);
      header.writeInt32BE(schemaId, 1);
      return Buffer.concat([header, body]);
    };
    const valid = await goodFrame(0);
    const badLogin = (over: object) => codec.encode('login', { ...good(99).event, ...over });
    const accountFrame = await codec.encode('account', oneOfEach('x')[4]!.event);
    const cases: [string, Buffer, string, RegExp][] = [
      [
        'keyed to another partition',
        await codec.encode('login', login(accountsOn(1, 1, 'acct-elsewhere')[0]!, now - MINUTE).event),
        'wrong_partition',
        /belongs on partition 1 of 3, this message is on 0/,
      ],
      ['random bytes', Buffer.from([0x13, 0x37, 0xbe, 0xef, 0x00, 0x01]), 'not_wire_format', /wire format/],
      [
        'unknown schema id',
        frame(987_654, valid.subarray(5)),
        'unknown_schema_id',
        /987654 is not in the registry/,
      ],
      [
        'schema of another topic',
        accountFrame,
        'wrong_schema',
        /AccountEvent, this topic carries fairflag\.activity\.LoginEvent/,
      ],
      ['truncated Avro', valid.subarray(0, valid.length - 8), 'undecodable', /does not match schema id/],
      [
        'bad IP',
        await badLogin({ ip: '999.1.1.1' }),
        'invalid_field',
        /^ip: not an IPv4 or IPv6 address: "999\.1\.1\.1"/,
      ],
      [
        'timestamp far in the future',
        await badLogin({ occurredAt: now + 48 * HOUR }),
        'invalid_field',
        /^occurredAt: .* in the future/,
      ],
      [
        'missing account id',
        await badLogin({ accountId: '' }),
        'invalid_field',
        /^accountId: must not be empty/,
      ],
      [
        'oversized payload',
        await badLogin({ deviceId: 'd'.repeat(100_000) }),
        'oversized',
        /exceeds validation\.maxPayloadBytes/,
      ],
    ];
    const negativeAmount = await codec.encode('contract', {
      ...(oneOfEach('neg')[3]!.event as object),
      action: 'MILESTONE_PAID',
      amount: -10,
    });
    const messages: { key: string; value: Buffer; headers?: Record<string, string> }[] = [];
    cases.forEach(([name, value], i) => {
      messages.push({ key: `k-${i}`, value, headers: { 'x-case': name } });
    });
    for (let i = 0; i < cases.length; i++)
      messages.splice(2 * i + 1, 0, { key: `good-${i + 1}`, value: await goodFrame(i + 1) });
    // all on one partition so "the next good event" is really the next message
    await h.producer.send({
      topic: h.topics.login,
      acks: -1,
      messages: messages.map((m) => ({ ...m, partition: 0 })),
    });
    await h.publishRaw(h.topics.contract, [{ key: 'client-neg', value: negativeAmount }]);
    await h.settle();

    const dead = await h.deadLetters();
    for (const [name, value, reason, detail] of cases) {
      const d = dead.find((x) =>
        x.headers.some((hd) => hd.key === 'x-case' && hd.value?.toString() === name),
      );
      expect(d, name).toBeDefined();
      expect(d!.reason, name).toBe(reason);
      expect(d!.detail, name).toMatch(detail);
      expect(d!.sourceTopic).toBe(h.topics.login);
      expect(d!.sourcePartition).toBe(0);
      expect(Number(d!.sourceOffset)).toBeGreaterThanOrEqual(0);
      expect(Buffer.compare(d!.value!, value), `${name}: original bytes kept`).toBe(0);
    }
    const neg = dead.find((x) => x.sourceTopic === h.topics.contract);
    expect(neg?.reason).toBe('invalid_field');
    expect(neg?.detail).toBe('amount: must not be negative, got -10');
    // every good event between them was processed
    for (let i = 1; i <= cases.length; i++) {
      const stored = await h.proc.storedAccount(goodIds[i]!);
      expect(stored.events.get('session')?.size, `good event ${i}`).toBe(1);
    }
    const metrics = await h.proc.metrics.registry.getSingleMetricAsString('fairflag_dead_letters_total');
    expect(metrics).toContain('reason="invalid_field"} 4');
  });

  it('produces flags in the registry wire format that decode back into the flag schema', async () => {
    const acct = 'acct-shared-ip';
    // five accounts on one personal IP within a week: ip.shared_by_accounts, with a second family
    // (payment.shared_instrument) so the flag is corroborated
    const events: ActivityEvent[] = [];
    for (let i = 0; i < 5; i++) {
      const a = i === 4 ? acct : `${acct}-${i}`;
      events.push(login(a, now - (10 - i) * MINUTE, '89.160.20.120'));
      events.push({
        family: 'payment',
        event: {
          eventId: id('e-pay'),
          accountId: a,
          occurredAt: now - (10 - i) * MINUTE + 1000,
          action: 'ADDED',
          methodId: 'pm',
          methodType: 'CARD',
          instrumentFingerprint: 'fp-shared-card',
          ip: null,
          deviceId: null,
        },
      });
    }
    // the four others first: accounts on different partitions are consumed in no fixed order
    await h.publish(events.slice(0, 8));
    await h.settle();
    await h.publish(events.slice(8));
    await h.settle();
    const flags = (await h.flags()).filter((f) => f.accountId === acct);
    expect(flags.length).toBeGreaterThanOrEqual(1);
    const f = flags[flags.length - 1]!;
    expect(f.action).toBe('REVIEW');
    expect(f.reviewQueue).toBe('identity');
    expect(f.flagId).toMatch(/^ff-[0-9a-f]{32}$/);
    expect(f.signals.map((s) => s.id).sort()).toEqual(['ip.shared_by_accounts', 'payment.shared_instrument']);
    const shared = f.signals.find((s) => s.id === 'ip.shared_by_accounts')!;
    expect(shared.observed).toBe(5);
    expect(shared.threshold).toBe(4);
    expect(shared.window).toBe('7d');
    expect(shared.evidenceEventIds).toHaveLength(1);
    expect(f.configVersion).toBe(h.proc.configVersion);
    expect(f.processorVersion).toMatch(/^fairflag\/\d+\.\d+\.\d+$/);
    // on the wire: magic byte 0, then the id the registry gave the flag schema
    const wire = (await h.flagBytes()).at(-1)!;
    expect(wire[0]).toBe(0);
    const schemaId = wire.readInt32BE(1);
    expect(schemaId).toBe(h.proc.codec.idOf('flag'));
    const registered = (await h.proc.codec.registry.getSchema(schemaId)) as unknown as { name: string };
    expect(registered.name).toBe('fairflag.review.ReviewFlag');
  });

  it('resumes from committed offsets after a restart without reprocessing committed events', async () => {
    await h.publish([login('acct-restart', now - 3 * MINUTE), login('acct-restart', now - 2 * MINUTE)]);
    await h.settle();
    await h.proc.stop();
    // published while no processor runs
    await h.producer.send({
      topic: h.topics.login,
      acks: -1,
      messages: [
        {
          key: 'acct-restart',
          value: await h.proc.codec.encode('login', login('acct-restart', now - MINUTE).event),
        },
      ],
    });
    const second = await h.startProcessor();
    await h.settle();
    expect(second.counts.processed).toBe(1);
    expect((await h.proc.storedAccount('acct-restart')).events.get('session')?.size).toBe(3);
  });
});

describe('co-partitioned topics', () => {
  it('refuses to start when the consumed topics have different partition counts, naming each', async () => {
    const loaded = isolatedConfig('mismatch');
    const t = loaded.config.topics;
    const h = new Harness(loaded);
    await h.admin.connect();
    try {
      await h.admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: t.login, numPartitions: 3 },
          { topic: t.ip, numPartitions: 2 },
        ],
      });
      const log = createLogger('mismatch-test');
      log.level = 'fatal';
      await expect(Processor.start({ loaded, log, http: false })).rejects.toThrow(
        new RegExp(
          `same number of partitions.*${t.login.replace(/\./g, '\\.')}: 3.*${t.ip.replace(/\./g, '\\.')}: 2`,
        ),
      );
    } finally {
      await h.admin.disconnect();
    }
  });
});
