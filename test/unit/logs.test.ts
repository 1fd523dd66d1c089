// What reaches the log: kafkajs's lines at levels that mean something, explicit partitioning, and
// errors with their stack and cause.
import { logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { kafkaLogLevel } from '../../src/kafka/client-log.js';
import { kafkaClient } from '../../src/kafka/processor.js';
import { createLogger } from '../../src/runtime/logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('logs-test', { write: (l: string) => lines.push(JSON.parse(l)) });
  log.level = 'debug';
  return { log, lines };
}

describe('kafkajs log levels', () => {
  it('answers kafkajs retries (leader moved, coordinator loading) are warnings, not errors', () => {
    for (const error of [
      "The coordinator is loading and hence can't process requests for this group",
      'This server is not the leader for that topic-partition',
      'The group coordinator is not available',
      'There is no leader for this topic-partition as we are in the middle of a leadership election',
    ])
      expect(
        kafkaLogLevel(logLevel.ERROR, { message: 'Response Produce(key: 0, version: 7)', error }),
        error,
      ).toBe('warn');
  });

  it('a rebalance is information', () => {
    expect(kafkaLogLevel(logLevel.WARN, { message: 'The group is rebalancing, re-joining' })).toBe('info');
    expect(
      kafkaLogLevel(logLevel.ERROR, {
        message: 'Response Heartbeat(key: 12, version: 3)',
        error: 'The group is rebalancing, so a rejoin is needed',
      }),
    ).toBe('info');
  });

  it('keeps what kafkajs does not retry an error, and other levels as they are', () => {
    expect(kafkaLogLevel(logLevel.ERROR, { message: 'Crash: KafkaJSNonRetriableError', error: 'boom' })).toBe(
      'error',
    );
    expect(
      kafkaLogLevel(logLevel.ERROR, {
        message: 'Response Produce',
        error: 'The request included a message larger than the max message size the server will accept',
      }),
    ).toBe('error');
    expect(kafkaLogLevel(logLevel.WARN, { message: 'something' })).toBe('warn');
    expect(kafkaLogLevel(logLevel.INFO, { message: 'something' })).toBe('info');
  });

  it('producers choose their partitioner, so kafkajs does not warn that its default changed', () => {
    expect(process.env['KAFKAJS_NO_PARTITIONER_WARNING']).toBeUndefined();
    const { log, lines } = capture();
    const kafka = kafkaClient(loadConfig({ env: {} }).config.kafka, log);
    kafka.producer();
    kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    // the control: kafkajs does log through this log. fairflag bounds the idempotent producer's
    // retries on purpose (its batch loop retries a produce), so that notice is information
    expect(lines.map((l) => [l['level'], l['msg']])).toEqual([
      [30, 'Limiting retries for the idempotent producer may invalidate EoS guarantees'],
    ]);
  });
});

describe('logged errors', () => {
  it('keep their class, stack and cause', () => {
    const { log, lines } = capture();
    const cause = new TypeError('socket closed');
    log.error({ err: new Error('batch failed', { cause }) }, 'it went wrong');
    const err = lines[0]!['err'] as {
      type: string;
      message: string;
      stack: string;
      cause: { type: string; message: string; stack: string };
    };
    expect(err.type).toBe('Error');
    expect(err.message).toBe('batch failed');
    expect(err.stack).toMatch(/^Error: batch failed\n\s+at /);
    expect(err.cause).toMatchObject({ type: 'TypeError', message: 'socket closed' });
    expect(err.cause.stack).toMatch(/^TypeError: socket closed\n\s+at /);
  });
});
