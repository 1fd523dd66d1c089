// The fault tests' own stack instance (see global-setup.ts): its endpoints, service control
// (stop/start/restart one service through scripts/stack.sh) and per-file isolated configs.
import { inject } from 'vitest';
import { isolatedEnv } from '../../support/config.js';
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

/** The FAIRFLAG_* environment of one test's processor on the fault stack (see isolatedEnv). */
export function faultEnv(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return isolatedEnv(name, faultStack(), 'f', extra);
}
