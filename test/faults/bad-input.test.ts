// Bad input on every input topic (the five activity topics and the review outcomes): each message
// lands in the dead-letter topic with a specific reason, the processor keeps processing the good
// events around it, and each dead letter decodes with its schema and carries the original bytes
// (the first of them and a digest when the original is over deadLetters.maxOriginalBytes), key,
// headers and source topic/partition/offset.
import { createHash } from 'node:crypto';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsOn } from '../support/config.js';
import type { Family } from '../../src/domain/events.js';
import { readSchema, type SchemaRole } from '../../src/kafka/codec.js';
import type { Processor } from '../../src/kafka/processor.js';
import { endOffsets, readRange } from '../../src/kafka/topic-tools.js';
import { Driver, type DeadLetterRecord } from './support/driver.js';
import { faultEnv } from './support/stack.js';

interface Case {
  name: string;
  value: Buffer;
  reason: string;
  detail: RegExp;
}

const now = Date.now();
const tag = now.toString(36);
const frame = (id: number, body: Buffer) => {
  const h = Buffer.alloc(5);
  h.writeInt32BE(id, 1);
  return Buffer.concat([h, body]);
};

/** A valid record of each input role; `n` makes ids unique. */
function good(role: Family | 'reviewOutcome', n: string): Record<string, unknown> {
  const common = {
    eventId: `bi-${tag}-${role}-${n}`,
    // every message of this test goes to partition 0: so must its account (or it is wrong_partition)
    accountId: accountsOn(0, 1, `acct-bi-${tag}-${role}-${n}`)[0]!,
    occurredAt: now - 60_000,
  };
  switch (role) {
    case 'login':
      return { ...common, outcome: 'SUCCESS', ip: '216.160.83.56', deviceId: `dev-${n}`, sessionId: null };
    case 'ip':
      return { ...common, ip: '89.160.20.112', source: 'web', deviceId: null, sessionId: null };
    case 'payment':
      return {
        ...common,
        action: 'ADDED',
        methodId: 'pm-1',
        methodType: 'CARD',
        instrumentFingerprint: `fp-bi-${tag}-${n}`,
        ip: null,
        deviceId: null,
      };
    case 'contract':
      return {
        ...common,
        contractId: `ctr-bi-${tag}-${n}`,
        clientAccountId: common.accountId,
        freelancerAccountId: `acct-bi-${tag}-free-${n}`,
        action: 'MILESTONE_PAID',
        amount: 120,
        currency: 'USD',
        rating: null,
        disputeReason: null,
        ip: null,
        deviceId: null,
      };
    case 'account':
      return {
        ...common,
        action: 'STATS_UPDATED',
        accountType: null,
        lifetimeCompletedContracts: 3,
        lifetimePaidHours: 10,
        lifetimeEarnings: 500,
        ip: null,
        deviceId: null,
      };
    case 'reviewOutcome':
      return {
        outcomeId: `out-bi-${tag}-${n}`,
        flagId: `ff-${'0'.repeat(32)}`,
        accountId: common.accountId,
        outcome: 'CLEARED',
        noteCategory: null,
        decidedAt: now - 60_000,
      };
  }
}

describe('bad input on every input topic', () => {
  const d = new Driver(faultEnv('bad-input'));
  let proc: Processor;
  const sent = new Map<string, { topic: string; role: SchemaRole; c: Case }>();
  const goodAccounts = new Map<string, string[]>();
  let dead: DeadLetterRecord[] = [];
  let offsets = new Map<string, { topic: string; offset: string; key: string | undefined }>();

  beforeAll(async () => {
    await d.connect();
    proc = await d.startProcessor();
    const codec = d.codec;
    const t = d.topics;
    const roles: [SchemaRole, string][] = [
      ['login', t.login],
      ['ip', t.ip],
      ['payment', t.paymentMethod],
      ['contract', t.contract],
      ['account', t.account],
      ['reviewOutcome', t.reviewOutcomes],
    ];
    for (const [role, topic] of roles) {
      const fam = role as Family | 'reviewOutcome';
      const enc = (over: Record<string, unknown>, n = 'bad') =>
        codec.encode(role, { ...good(fam, n), ...over });
      const valid = await enc({});
      const other: SchemaRole = role === 'login' ? 'account' : 'login';
      const otherFrame = await codec.encode(other, good(other as Family, 'other'));
      // a record with this topic's full name but another shape, registered under another subject
      const own = JSON.parse(readSchema(role).text) as {
        name: string;
        namespace: string;
        fields: { name: string }[];
      };
      const foreign = {
        type: 'record',
        name: own.name,
        namespace: own.namespace,
        fields: [
          { name: own.fields[0]!.name, type: 'long' },
          { name: 'somethingElse', type: 'string' },
        ],
      };
      const { id: foreignId } = await codec.registry.register(
        { type: SchemaType.AVRO, schema: JSON.stringify(foreign) },
        { subject: `${d.config.redis.keyPrefix}-foreign-${role}-value` },
      );
      const foreignFrame = Buffer.concat([
        frame(foreignId, Buffer.alloc(0)),
        (await codec.registry.getSchema(foreignId)).toBuffer({
          [own.fields[0]!.name]: 42,
          somethingElse: 'x',
        }) as Buffer,
      ]);
      const ts = role === 'reviewOutcome' ? 'decidedAt' : 'occurredAt';
      const cases: Case[] = [
        {
          name: 'random bytes',
          value: Buffer.from('42f00dbeefcafe0102030405060708090a', 'hex'),
          reason: 'not_wire_format',
          detail: /not in Confluent wire format/,
        },
        {
          name: 'empty value',
          value: Buffer.alloc(0),
          reason: 'not_wire_format',
          detail: /empty message value/,
        },
        {
          name: 'truncated Avro',
          value: valid.subarray(0, valid.length - 4),
          reason: 'undecodable',
          detail: /does not match schema id/,
        },
        {
          name: 'unknown schema id',
          value: frame(987_654_321, valid.subarray(5)),
          reason: 'unknown_schema_id',
          detail: /987654321 is not in the registry/,
        },
        {
          name: "another topic's schema",
          value: otherFrame,
          reason: 'wrong_schema',
          detail: /this topic carries/,
        },
        {
          name: 'same name, other shape',
          value: foreignFrame,
          reason: 'wrong_schema',
          detail: new RegExp(`schema id ${foreignId}`),
        },
        {
          name: 'empty account id',
          value: await enc({ accountId: '' }),
          reason: 'invalid_field',
          detail: /^accountId: must not be empty/,
        },
        {
          name: '1970',
          value: await enc({ [ts]: Date.UTC(1970, 5, 1) }),
          reason: 'invalid_field',
          detail: new RegExp(`^${ts}: \\d+ is before 2000`),
        },
        {
          name: '2100',
          value: await enc({ [ts]: Date.UTC(2100, 0, 1) }),
          reason: 'invalid_field',
          detail: new RegExp(`^${ts}: 2100-01-01T00:00:00.000Z is more than \\d+s in the future`),
        },
        {
          name: '1 MB payload',
          value: await enc(
            role === 'reviewOutcome'
              ? { noteCategory: 'n'.repeat(1 << 20) }
              : {
                  [role === 'contract'
                    ? 'currency'
                    : role === 'account' || role === 'payment'
                      ? 'deviceId'
                      : 'deviceId']: 'x'.repeat(1 << 20),
                },
          ),
          reason: 'oversized',
          detail: /payload of \d+ bytes exceeds validation\.maxPayloadBytes/,
        },
      ];
      if (role === 'reviewOutcome') {
        cases.push(
          {
            name: 'empty string',
            value: await enc({ outcomeId: '' }),
            reason: 'invalid_field',
            detail: /^outcomeId: must not be empty/,
          },
          {
            name: 'enormous string',
            value: await enc({ noteCategory: 'n'.repeat(30_000) }),
            reason: 'invalid_field',
            detail: /^noteCategory: longer than 256 characters/,
          },
        );
      } else {
        cases.push(
          {
            name: 'empty string',
            value: await enc({ eventId: '' }),
            reason: 'invalid_field',
            detail: /^eventId: must not be empty/,
          },
          {
            name: 'enormous string',
            value: await enc({ deviceId: 'd'.repeat(60_000) }),
            reason: 'invalid_field',
            detail: /^deviceId: longer than 128 characters: "d{60}\.\.\." \(60000 chars\)/,
          },
          {
            name: 'IP 999.1.1.1',
            value: await enc({ ip: '999.1.1.1' }),
            reason: 'invalid_field',
            detail: /^ip: not an IPv4 or IPv6 address: "999\.1\.1\.1"/,
          },
          {
            name: 'IP ::ffff:',
            value: await enc({ ip: '::ffff:' }),
            reason: 'invalid_field',
            detail: /^ip: not an IPv4 or IPv6 address: "::ffff:"/,
          },
        );
      }
      if (role === 'contract') {
        cases.push(
          {
            name: 'negative amount',
            value: await enc({ amount: -10 }),
            reason: 'invalid_field',
            detail: /^amount: must not be negative, got -10/,
          },
          {
            name: 'NaN amount',
            value: await enc({ amount: NaN }),
            reason: 'invalid_field',
            detail: /^amount: expected a finite number, got NaN/,
          },
        );
      }
      if (role === 'account') {
        cases.push(
          {
            name: 'negative amount',
            value: await enc({ lifetimeEarnings: -1 }),
            reason: 'invalid_field',
            detail: /^lifetimeEarnings: must not be negative/,
          },
          {
            name: 'NaN amount',
            value: await enc({ lifetimePaidHours: NaN }),
            reason: 'invalid_field',
            detail: /^lifetimePaidHours: expected a finite number, got NaN/,
          },
          {
            name: 'negative count',
            value: await enc({ lifetimeCompletedContracts: -3 }),
            reason: 'invalid_field',
            detail: /^lifetimeCompletedContracts: must not be negative/,
          },
        );
      }
      // good, bad, good, bad, ..., good: all on partition 0, so "between" is exact
      const messages: {
        key: string;
        value: Buffer;
        partition: number;
        headers: Record<string, Buffer | string>;
      }[] = [];
      const goods: string[] = [];
      const goodMessage = async (n: number) => {
        const rec = good(fam, `g${n}`);
        goods.push(String(rec['accountId']));
        return {
          key: String(rec['accountId']),
          value: await codec.encode(role, rec),
          partition: 0,
          headers: {},
        };
      };
      messages.push(await goodMessage(0));
      for (const [i, c] of cases.entries()) {
        const name = `${topic}: ${c.name}`;
        sent.set(name, { topic, role, c });
        messages.push({
          key: `bad-${i}`,
          value: c.value,
          partition: 0,
          headers: { 'x-case': name, 'x-bin': Buffer.from([0, 255, 1]) },
        });
        messages.push(await goodMessage(i + 1));
      }
      goodAccounts.set(topic, goods);
      // one at a time: the 1 MB message alone fills a produce request
      for (const m of messages) await d.producer.send({ topic, acks: -1, messages: [m] });
    }
    await d.settle(60_000);
    dead = await d.deadLetters();
    offsets = new Map();
    for (const [, topic] of roles) {
      for (const m of await readRange(d.kafka, topic, new Map(), await endOffsets(d.admin, topic), 60_000)) {
        const name = m.headers?.['x-case']?.toString();
        if (name) offsets.set(name, { topic, offset: m.offset, key: m.key?.toString() });
      }
    }
  });
  afterAll(async () => {
    await proc?.stop();
    await d.close();
  });

  it('dead-letters every bad message once, with its specific reason and detail', () => {
    const byCase = new Map<string, DeadLetterRecord[]>();
    for (const x of dead) {
      const name = x.headers.find((h) => h.key === 'x-case')?.value?.toString() ?? '(no x-case header)';
      byCase.set(name, [...(byCase.get(name) ?? []), x]);
    }
    const problems: string[] = [];
    for (const [name, { c }] of sent) {
      const got = byCase.get(name) ?? [];
      if (got.length !== 1) problems.push(`${name}: ${got.length} dead letters`);
      else if (got[0]!.reason !== c.reason || !c.detail.test(got[0]!.detail))
        problems.push(
          `${name}: expected ${c.reason} ~ ${c.detail}, got ${got[0]!.reason}: ${got[0]!.detail.slice(0, 200)}`,
        );
    }
    expect(problems).toEqual([]);
    expect(dead).toHaveLength(sent.size);
    console.log(
      `[fault outcome] bad input: ${sent.size} bad messages on 6 topics -> ${dead.length} dead letters; reasons ${JSON.stringify(
        Object.fromEntries(
          [...new Set(dead.map((x) => x.reason))].map((r) => [r, dead.filter((x) => x.reason === r).length]),
        ),
      )}`,
    );
  });

  it('keeps the original bytes, key, headers and source position in each dead letter', () => {
    // the six 1 MB payloads, and nothing else, are over deadLetters.maxOriginalBytes
    expect(dead.filter((x) => x.truncated).map((x) => x.reason)).toEqual(Array(6).fill('oversized'));
    for (const x of dead) {
      const name = x.headers.find((h) => h.key === 'x-case')!.value!.toString();
      const { c, topic } = sent.get(name)!;
      const pos = offsets.get(name)!;
      expect(x.sourceTopic, name).toBe(topic);
      expect(x.sourcePartition, name).toBe(0);
      expect(x.sourceOffset, name).toBe(pos.offset);
      expect(x.key?.toString(), name).toBe(pos.key);
      if (x.truncated) {
        // an original over deadLetters.maxOriginalBytes (the 1 MB payloads): its first bytes,
        // its size and its digest
        expect(c.value.length, `${name}: truncated only when large`).toBeGreaterThan(1024 * 1024);
        expect(x.truncated.valueBytes, name).toBe(c.value.length);
        expect(x.truncated.valueSha256, name).toBe(createHash('sha256').update(c.value).digest('hex'));
        expect(c.value.subarray(0, x.value!.length).equals(x.value!), `${name}: first bytes`).toBe(true);
      } else expect(Buffer.compare(x.value ?? Buffer.alloc(0), c.value), `${name}: original bytes`).toBe(0);
      expect(x.headers.find((h) => h.key === 'x-bin')?.value, name).toEqual(Buffer.from([0, 255, 1]));
      expect(x.processorVersion).toMatch(/^fairflag\//);
    }
  });

  it('processes every good event before, between and after the bad ones', async () => {
    const keys = await d.dump();
    for (const [topic, accounts] of goodAccounts) {
      if (topic === d.topics.reviewOutcomes) continue;
      for (const a of accounts) expect(Object.keys(keys).includes(`{a:${a}}`), `${topic}: ${a}`).toBe(true);
    }
    expect(proc.counts.outcomes).toBe(goodAccounts.get(d.topics.reviewOutcomes)!.length);
    expect(await proc.ready()).toBe(true);
  });
});
