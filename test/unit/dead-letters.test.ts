// Dead letters that always fit (src/kafka/dead-letters.ts): whole when they fit, else truncated
// with the source position, sizes, digests and the first bytes; bounded Kafka keys; produce
// requests split to fit each topic's limit.
import { createHash } from 'node:crypto';
import avro from 'avsc';
import fc from 'fast-check';
import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  DEAD_LETTER_KEY_MAX,
  chunkBySize,
  deadLetterKey,
  messageSize,
  recordSize,
  shapeDeadLetter,
  type DeadLetter,
} from '../../src/kafka/dead-letters.js';
import { readSchema } from '../../src/kafka/codec.js';

const schema = avro.Type.forSchema(JSON.parse(readSchema('deadLetter').text) as avro.Schema);
const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function letter(over: Partial<KafkaMessage> = {}, partition = 2): DeadLetter {
  return {
    reason: 'oversized',
    detail: 'payload of many bytes',
    topic: 'activity.login',
    partition,
    message: {
      key: Buffer.from('acct-1'),
      value: Buffer.from('value'),
      headers: { 'x-a': Buffer.from('1') },
      offset: '41',
      timestamp: '1700000000000',
      attributes: 0,
      size: 0,
      ...over,
    } as unknown as KafkaMessage,
  };
}
const limits = {
  recordBudget: 200_000,
  maxOriginalBytes: 1024 * 1024,
  partitions: 3,
  maxHeaders: 64,
  maxHeaderBytes: 16_384,
};

describe('shapeDeadLetter', () => {
  it('keeps the original whole when it fits, with the source position in a header', async () => {
    const s = await shapeDeadLetter(letter(), limits, 'fairflag/test', 5);
    expect(s.record).toMatchObject({
      reason: 'oversized',
      sourceTopic: 'activity.login',
      sourcePartition: 2,
      sourceOffset: '41',
      key: Buffer.from('acct-1'),
      value: Buffer.from('value'),
      headers: [{ key: 'x-a', value: Buffer.from('1') }],
      truncated: null,
    });
    expect(s.headers).toEqual({ 'fairflag-reason': 'oversized', 'fairflag-source': 'activity.login/2@41' });
    expect(s.key).toEqual(Buffer.from('acct-1'));
    expect(s.partition).toBe(2);
    expect(schema.isValid(s.record)).toBe(true);
  });

  it('truncates what would not fit: first bytes, sizes and digests kept, and says so', async () => {
    const value = Buffer.alloc(500_000, 7);
    value[0] = 1;
    const key = Buffer.alloc(300_000, 'k');
    const s = await shapeDeadLetter(letter({ value, key }, 4), limits, 'fairflag/test');
    expect(s.record.truncated).toEqual({
      keyBytes: 300_000,
      valueBytes: 500_000,
      headerCount: 1,
      headerBytes: 4,
      keySha256: hex(key),
      valueSha256: hex(value),
    });
    expect(s.record.value).toEqual(value.subarray(0, s.record.value!.length));
    expect(s.record.value!.length).toBe(50_000);
    expect(s.record.key!.length).toBe(1024);
    expect(s.headers['fairflag-truncated']).toBe('true');
    expect(s.partition).toBe(1);
    const encoded = schema.toBuffer(s.record);
    expect(encoded.length).toBeLessThanOrEqual(limits.recordBudget);
    // the Kafka key is bounded and names the original by its digest
    expect(s.key!.length).toBeLessThanOrEqual(DEAD_LETTER_KEY_MAX);
    expect(s.key!.toString()).toBe(`${'k'.repeat(128)}...#sha256=${hex(key)}`);
  });

  it('copies an original whole only up to maxOriginalBytes, however large the topic', async () => {
    const value = Buffer.alloc(300_000, 5);
    const roomy = { ...limits, recordBudget: 10_000_000, maxOriginalBytes: 250_000 };
    const s = await shapeDeadLetter(letter({ value }), roomy, 'fairflag/test');
    expect(s.record.truncated).toMatchObject({ valueBytes: 300_000, valueSha256: hex(value) });
    expect(s.record.value!.length).toBe(64 * 1024);
    const under = await shapeDeadLetter(
      letter({ value: value.subarray(0, 200_000) }),
      roomy,
      'fairflag/test',
    );
    expect(under.record.truncated).toBeNull();
    expect(under.record.value!.length).toBe(200_000);
  });

  it('never copies more headers than the limits allow', async () => {
    const headers = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`h${i}`, Buffer.alloc(100)]));
    const s = await shapeDeadLetter(letter({ headers }), limits, 'fairflag/test');
    expect(s.record.truncated).toMatchObject({ headerCount: 500, headerBytes: 500 * 100 + 1890 });
    expect(s.record.headers.length).toBeLessThanOrEqual(64);
    expect(s.record.value).toEqual(Buffer.from('value'));
  });

  it('always fits its budget, whatever the sizes (encoded with the real schema)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 300_000 }),
        fc.integer({ min: 0, max: 300_000 }),
        fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.integer({ min: 0, max: 5000 })), {
          maxLength: 80,
        }),
        fc.integer({ min: 20_000, max: 400_000 }),
        fc.string({ maxLength: 5000 }),
        async (keyLen, valueLen, hs, budget, detail) => {
          const headers = Object.fromEntries(hs.map(([k, n]) => [k, Buffer.alloc(n, 1)]));
          const d = {
            ...letter({ key: Buffer.alloc(keyLen, 2), value: Buffer.alloc(valueLen, 3), headers }),
            detail,
          };
          const s = await shapeDeadLetter(d, { ...limits, recordBudget: budget }, 'fairflag/test');
          const size = schema.toBuffer(s.record).length;
          expect(size).toBeLessThanOrEqual(recordSize(s.record));
          expect(size).toBeLessThanOrEqual(budget);
          if (!s.record.truncated) {
            expect(s.record.key!.length).toBe(keyLen);
            expect(s.record.value!.length).toBe(valueLen);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('bounds keys without hashing short ones', async () => {
    expect(await deadLetterKey(null)).toBeNull();
    const short = Buffer.alloc(DEAD_LETTER_KEY_MAX, 'a');
    expect(await deadLetterKey(short)).toBe(short);
    const t0 = performance.now();
    const huge = await deadLetterKey(Buffer.alloc(4 * 1024 * 1024, 'a'));
    expect(performance.now() - t0).toBeLessThan(200);
    expect(huge!.length).toBeLessThanOrEqual(DEAD_LETTER_KEY_MAX);
  });
});

describe('chunkBySize', () => {
  it('keeps order, and every request of more than one message fits the smallest limit in it', () => {
    const limit: Record<string, number> = { a: 1000, b: 5000, c: 300 };
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ topic: fc.constantFrom('a', 'b', 'c'), size: fc.integer({ min: 1, max: 2000 }) }),
        ),
        (items) => {
          const chunks = chunkBySize(items, (t) => limit[t]!);
          expect(chunks.flat()).toEqual(items);
          for (const c of chunks) {
            expect(c.length).toBeGreaterThan(0);
            if (c.length > 1)
              expect(c.reduce((n, x) => n + x.size, 0)).toBeLessThanOrEqual(
                Math.min(...c.map((x) => limit[x.topic]!)),
              );
          }
        },
      ),
    );
  });

  it('sizes a message generously', () => {
    expect(messageSize({ key: 'k', value: Buffer.alloc(10), headers: { h: ['1', '22'] } })).toBe(
      72 + 1 + 10 + (12 + 1 + 1) + (12 + 1 + 2),
    );
  });
});
