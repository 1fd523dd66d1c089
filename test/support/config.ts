// A config for one integration test file: the services from the global setup, and its own topics,
// consumer group and Redis key prefix, so test files never see each other's data.
import { partitionOfKey } from '../../src/kafka/processor.js';
import { topicNames } from '../../config/schema.js';
import { loadConfig, type LoadedConfig } from '../../src/runtime/config-loader.js';
import { endpoints, type Endpoints } from './endpoints.js';

/**
 * The FAIRFLAG_* environment of one test's processor: the given services, and topics, a consumer
 * group and a Redis key prefix of its own (`<tag>-<name>-<unique>`). Also what a child `fairflag
 * run` gets.
 */
export function isolatedEnv(
  name: string,
  services: Pick<Endpoints, 'kafkaBrokers' | 'registryUrl' | 'redisUrl'>,
  tag: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const id = `${name}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  // every topic the default config names, so one added there is isolated here too
  const topics = topicNames(loadConfig({ env: {} }).config.topics);
  return {
    FAIRFLAG_KAFKA_BROKERS: services.kafkaBrokers.join(','),
    FAIRFLAG_REGISTRY_URL: services.registryUrl,
    FAIRFLAG_REDIS_URL: services.redisUrl,
    FAIRFLAG_GROUP_ID: `fairflag-${id}`,
    FAIRFLAG_REDIS_KEY_PREFIX: `${tag}-${id}`,
    FAIRFLAG_HTTP_PORT: '0',
    // the fixtures are MaxMind's test databases, which `run` refuses unless allowed
    FAIRFLAG__maxmind__allowTestDatabases: 'true',
    // tests produce the input topics themselves: nobody else registers their subjects
    FAIRFLAG__registry__registerInputSubjects: 'true',
    ...Object.fromEntries(
      Object.entries(topics).map(([k, t]) => [`FAIRFLAG__topics__${k}`, `${tag}-${id}.${t}`]),
    ),
    ...extra,
  };
}

export function isolatedConfig(name: string, extra: Record<string, string> = {}): LoadedConfig {
  return loadConfig({ env: isolatedEnv(name, endpoints(), 't', extra) });
}

/** `n` account ids with a prefix that the default partitioner puts on `partition` (of 3). */
export function accountsOn(partition: number, n: number, prefix: string, partitions = 3): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const id = `${prefix}-${i}`;
    if (partitionOfKey(id, partitions) === partition) out.push(id);
  }
  return out;
}
