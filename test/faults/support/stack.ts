// The fault tests' own stack instance (see global-setup.ts): its endpoints, service control
// (stop/start/restart one service through scripts/stack.sh) and per-file isolated configs.
import { inject } from 'vitest';
import { stackCommand, type FaultStack } from './stack-control.js';

export { FAULT_STATE, type FaultStack } from './stack-control.js';

declare module 'vitest' {
  export interface ProvidedContext {
    faultStack: FaultStack;
  }
}

export function faultStack(): FaultStack {
  return inject('faultStack');
}

export type Service = 'kafka' | 'registry' | 'redis';

/** stop / start / restart one service of the fault stack (data kept). */
export function service(action: 'stop' | 'start' | 'restart', svc: Service): Promise<string> {
  return stackCommand(faultStack().env, [action, svc]);
}

/**
 * The FAIRFLAG_* environment of one test's processor: the fault stack's services, and its own
 * topics, consumer group and Redis key prefix. Also what a child `fairflag run` gets.
 */
export function faultEnv(name: string, extra: Record<string, string> = {}): Record<string, string> {
  const s = faultStack();
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
  return {
    FAIRFLAG_KAFKA_BROKERS: s.kafkaBrokers.join(','),
    FAIRFLAG_REGISTRY_URL: s.registryUrl,
    FAIRFLAG_REDIS_URL: s.redisUrl,
    FAIRFLAG_GROUP_ID: `fairflag-${id}`,
    FAIRFLAG_REDIS_KEY_PREFIX: `f-${id}`,
    FAIRFLAG_HTTP_PORT: '0',
    ...Object.fromEntries(Object.entries(topics).map(([k, t]) => [`FAIRFLAG__topics__${k}`, `f-${id}.${t}`])),
    ...extra,
  };
}
