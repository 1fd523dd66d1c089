// Where the integration tests find Kafka, the schema registry and Redis. test/support/global-setup.ts
// decides (environment, containers or scripts/stack.sh) and provides them; tests read them here.
import { inject } from 'vitest';

export type EndpointSource = 'environment' | 'containers' | 'stack';

export interface Endpoints {
  /** Kafka bootstrap brokers, host:port. */
  kafkaBrokers: string[];
  /** Confluent-compatible schema registry base URL, e.g. http://127.0.0.1:28081/apis/ccompat/v7. */
  registryUrl: string;
  /** redis://host:port */
  redisUrl: string;
  /** How the services were found, for messages. */
  source: EndpointSource;
}

declare module 'vitest' {
  export interface ProvidedContext {
    endpoints: Endpoints;
  }
}

/** The endpoints chosen by the integration project's global setup. */
export function endpoints(): Endpoints {
  return inject('endpoints');
}
