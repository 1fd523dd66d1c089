import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { startOnlyChanges } from '../../src/runtime/reload-guard.js';

const load = (env: Record<string, string>) => loadConfig({ env }).config;

describe('startOnlyChanges', () => {
  const running = load({});

  it('allows policy and processing changes', () => {
    const next = load({
      FAIRFLAG__signals__login__failed_burst__threshold: '12',
      FAIRFLAG__processing__attempts: '5',
    });
    expect(startOnlyChanges(running, next)).toEqual([]);
  });

  it('names every topic, connection, HTTP and MaxMind change with its path', () => {
    const next = load({
      FAIRFLAG_KAFKA_BROKERS: '10.0.0.1:9092,10.0.0.2:9092',
      FAIRFLAG__topics__login: 'other.login',
      FAIRFLAG_HTTP_PORT: '9999',
      FAIRFLAG__registry__requestTimeout: '9s',
      FAIRFLAG__maxmind__connectionType: 'null',
    });
    expect(startOnlyChanges(running, next)).toEqual([
      'kafka.brokers: was ["127.0.0.1:29092"], now ["10.0.0.1:9092","10.0.0.2:9092"]',
      'registry.requestTimeout: was 5000, now 9000',
      'topics.login: was "activity.login", now "other.login"',
      'http.port: was 9464, now 9999',
      expect.stringMatching(/^maxmind\.connectionType: was ".*GeoIP2-Connection-Type-Test\.mmdb", now null$/),
    ]);
  });

  it('does not print a URL that may carry a password', () => {
    const next = load({ FAIRFLAG_REDIS_URL: 'redis://:s3cret@10.0.0.9:6379' });
    const changes = startOnlyChanges(running, next);
    expect(changes).toEqual(['redis.url: changed']);
    expect(changes.join()).not.toContain('s3cret');
  });
});
