// Failure classification (src/kafka/failure.ts): what is an outage (retried), what belongs to the
// message (dead-lettered with its reason), what is unexpected. The Redis errors are the client's
// own, from a real connection to a port nobody listens on and a real reply error class.
import fc from 'fast-check';
import { Redis, ReplyError } from 'ioredis';
import {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
} from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CounterpartFormatError } from '../../src/engine/counterparts.js';
import { GeoIp, isValidIp } from '../../src/enrich/geoip.js';
import { StateStoreError } from '../../src/features/state-backend.js';
import { ingest } from '../../src/ingest/ingest.js';
import { InvalidEventError } from '../../src/ingest/validate.js';
import { DecodeError, RegistryUnavailableError } from '../../src/kafka/codec.js';
import { describeError, judge, messageFailure } from '../../src/kafka/failure.js';
import { loadConfig } from '../../src/runtime/config-loader.js';

const { config } = loadConfig({ env: {} });

describe('judge', () => {
  it('calls Redis connection failures outages, and replies Redis gives every time unexpected', async () => {
    const redis = new Redis(1, '127.0.0.1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    const down = await redis.get('x').catch((e: unknown) => e);
    redis.disconnect();
    expect(down).toBeInstanceOf(Error);
    const wrapped = new StateStoreError(`reading account state: ${(down as Error).message}`, { cause: down });
    expect(judge(wrapped)).toMatchObject({ kind: 'outage', service: 'redis', cause: 'StateStoreError' });

    const wrongType = new StateStoreError('reading shared entities: WRONGTYPE', {
      cause: new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
    });
    expect(judge(wrongType)).toMatchObject({ kind: 'unexpected', cause: 'StateStoreError' });
    for (const reply of [
      'LOADING Redis is loading',
      'OOM command not allowed',
      'READONLY replica',
      'BUSY script',
    ])
      expect(judge(new StateStoreError('x', { cause: new ReplyError(reply) })).kind, reply).toBe('outage');
  });

  it('calls Kafka connection trouble and exhausted retries outages, and a refused message unexpected', () => {
    expect(judge(new KafkaJSConnectionError('Connection error: ECONNREFUSED')).kind).toBe('outage');
    const retried = new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection timeout'), {
      retryCount: 5,
      retryTime: 1000,
    });
    expect(judge(retried)).toMatchObject({ kind: 'outage', service: 'kafka' });
    // as kafkajs builds it from the broker's error code 10, and wraps it when it will not retry
    const tooLarge = new KafkaJSProtocolError({
      message: 'The request included a message larger than the max message size the server will accept',
      type: 'MESSAGE_TOO_LARGE',
      code: 10,
      retriable: false,
    } as unknown as Error);
    const NonRetriable = KafkaJSNonRetriableError as unknown as new (e: Error, o: object) => Error;
    const j = judge(new NonRetriable(tooLarge, { cause: tooLarge }));
    expect(j).toMatchObject({ kind: 'unexpected', cause: 'KafkaJSProtocolError' });
    expect((j as { detail: string }).detail).toContain('larger than the max message size');
    // a plain TypeError inside the client's wrapper is not the cluster's fault
    const inner = new TypeError('Cannot read properties of undefined');
    expect(judge(new NonRetriable(inner, { cause: inner })).kind).toBe('unexpected');
  });

  it("gives fairflag's own input errors their reason, and names the class of anything else", () => {
    expect(judge(new RegistryUnavailableError('lookup of id 7 failed'))).toMatchObject({
      kind: 'outage',
      service: 'registry',
    });
    expect(judge(new DecodeError('unsupported_schema', 'schema id 7 is a JSON schema'))).toEqual({
      kind: 'message',
      reason: 'unsupported_schema',
      detail: 'schema id 7 is a JSON schema',
    });
    expect(judge(new InvalidEventError('ip', 'bad'))).toMatchObject({
      kind: 'message',
      reason: 'invalid_field',
    });
    expect(judge(new CounterpartFormatError('no kind'))).toMatchObject({ reason: 'undecodable' });
    const timeout = AbortSignal.timeout(0);
    return new Promise<void>((resolve) =>
      timeout.addEventListener('abort', () => {
        expect(judge(timeout.reason)).toMatchObject({ kind: 'outage', service: 'network' });
        expect(judge(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })).kind).toBe('outage');
        expect(messageFailure(new RangeError('Invalid array length'))).toEqual({
          reason: 'processing_error',
          detail: 'RangeError: Invalid array length',
        });
        expect(() => messageFailure(new RegistryUnavailableError('down'))).toThrow(RegistryUnavailableError);
        resolve();
      }),
    );
  });

  it('bounds the detail of an enormous error message', () => {
    const d = describeError(new Error('x'.repeat(100_000)));
    expect(d.length).toBeLessThan(1100);
    expect(d).toMatch(/^Error: x+\.\.\. \(100007 chars\)$/);
  });
});

describe('IP validation', () => {
  let geo: GeoIp;
  beforeAll(async () => {
    geo = await GeoIp.open(config.maxmind);
  });
  afterAll(() => undefined);

  const login = (ip: string) => ({
    eventId: 'ev-1',
    accountId: 'acct-1',
    occurredAt: Date.now() - 60_000,
    outcome: 'SUCCESS',
    ip,
    deviceId: null,
    sessionId: null,
  });

  it('refuses IPv6 zone ids with a clear reason instead of throwing in enrichment', () => {
    for (const ip of ['fe80::1%en-0', 'fe80::1%eth0', 'fe80::1%1', '::1%a.b', 'fe80::1%a:b']) {
      expect(isValidIp(ip), ip).toBe(false);
      const r = ingest('login', login(ip), config.validation, geo);
      expect(r, ip).toMatchObject({
        ok: false,
        reason: 'invalid_field',
        detail: expect.stringMatching(/^ip: an IPv6 zone id \(after "%"\) is not accepted: /),
      });
    }
  });

  it('never throws for any string: an address is enriched or refused as invalid_field', () => {
    const hexish = fc.string({
      unit: fc.constantFrom(...'0123456789abcdefABCDEF:.%-_/ x'.split('')),
      maxLength: 45,
    });
    const ipv6 = fc
      .ipV6()
      .chain((a) => fc.tuple(fc.constant(a), fc.option(fc.string({ maxLength: 6 }), { nil: undefined })));
    fc.assert(
      fc.property(
        fc.oneof(
          hexish,
          fc.ipV4(),
          fc.ipV4Extended(),
          ipv6.map(([a, z]) => (z === undefined ? a : `${a}%${z}`)),
        ),
        (ip) => {
          const r = ingest('login', login(ip), config.validation, geo);
          if (r.ok) expect(isValidIp(ip)).toBe(true);
          else expect(r.reason).toBe('invalid_field');
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
