// A config for one integration test file: the services from the global setup, and its own topics,
// consumer group and Redis key prefix, so test files never see each other's data.
import { loadConfig, type LoadedConfig } from '../../src/runtime/config-loader.js';
import { endpoints } from './endpoints.js';

export function isolatedConfig(name: string, extra: Record<string, string> = {}): LoadedConfig {
  const e = endpoints();
  const id = `${name}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const topics = {
    login: 'activity.login',
    ip: 'activity.ip',
    paymentMethod: 'activity.payment-method',
    contract: 'activity.contract',
    account: 'activity.account',
    reviewOutcomes: 'risk.review-outcomes',
    flags: 'risk.flags',
    deadLetter: 'risk.dlq',
  };
  const env: Record<string, string> = {
    FAIRFLAG_KAFKA_BROKERS: e.kafkaBrokers.join(','),
    FAIRFLAG_REGISTRY_URL: e.registryUrl,
    FAIRFLAG_REDIS_URL: e.redisUrl,
    FAIRFLAG_GROUP_ID: `fairflag-${id}`,
    FAIRFLAG_REDIS_KEY_PREFIX: `t-${id}`,
    FAIRFLAG_HTTP_PORT: '0',
    ...Object.fromEntries(Object.entries(topics).map(([k, t]) => [`FAIRFLAG__topics__${k}`, `t-${id}.${t}`])),
    ...extra,
  };
  return loadConfig({ env });
}
