// The three real services answer at the endpoints the global setup chose.
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { endpoints } from '../support/endpoints.js';

describe('test services', () => {
  it('Redis answers PING', async () => {
    const redis = new Redis(endpoints().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });

  it('the schema registry lists subjects as a JSON array', async () => {
    const res = await fetch(`${endpoints().registryUrl}/subjects`);
    expect(res.status).toBe(200);
    expect(Array.isArray(await res.json())).toBe(true);
  });

  it('Kafka reports a cluster of one broker', async () => {
    const kafka = new Kafka({
      clientId: 'fairflag-stack-test',
      brokers: endpoints().kafkaBrokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      expect(cluster.brokers).toHaveLength(1);
    } finally {
      await admin.disconnect();
    }
  });
});
