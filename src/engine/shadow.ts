// A shadow policy: a candidate config evaluated beside the live one on the same events. Its state
// lives in a namespace of its own, so it never changes live state; an account it has not seen yet
// starts from the live copy in Redis (its history), which the live batch has not yet overwritten
// when the shadow reads it (the shadow runs after the live batch is processed, before it is
// written). Its flags go to the shadow topic only.
import type { Cluster, Redis } from 'ioredis';
import { OwnedAccounts } from '../features/owned-accounts.js';
import type { EntityAccounts, EntityRef } from '../features/shared-entities.js';
import {
  RedisStateBackend,
  type ReviewRecord,
  type StateBackend,
  type StateWrite,
} from '../features/state-backend.js';
import type { LoadedConfig } from '../runtime/config-loader.js';
import { Engine } from './engine.js';
import { compilePolicy, type Policy } from './policy.js';

/** Reads the shadow's own copy first and the live one for what it lacks; writes only its own. */
export class ShadowStateBackend implements StateBackend {
  constructor(
    readonly own: RedisStateBackend,
    private readonly live: StateBackend,
  ) {}

  async readAccounts(ids: readonly string[]): Promise<(Buffer | null)[]> {
    const own = await this.own.readAccounts(ids);
    const missing = ids.filter((_, i) => own[i] === null);
    if (!missing.length) return own;
    const live = await this.live.readAccounts(missing);
    let next = 0;
    return own.map((b) => b ?? live[next++] ?? null);
  }

  /** An entity's accounts as both copies know them: sightings merge by their latest time. */
  async readEntities(refs: readonly EntityRef[]): Promise<EntityAccounts[]> {
    const [own, live] = await Promise.all([this.own.readEntities(refs), this.live.readEntities(refs)]);
    return own.map((o, i) => {
      const l = live[i]!;
      const accounts = new Map(l.accounts);
      for (const [a, at] of o.accounts) accounts.set(a, Math.max(at, accounts.get(a) ?? at));
      return { accounts, capped: o.capped || l.capped };
    });
  }

  write(w: StateWrite, accountTtlMs: number): Promise<void> {
    return this.own.write(w, accountTtlMs);
  }

  reviews(since: number, until: number): Promise<ReviewRecord[]> {
    return this.own.reviews(since, until);
  }
}

export interface ShadowPolicy {
  readonly policy: Policy;
  readonly engine: Engine;
  readonly namespace: string;
  /** The candidate file, as configured. */
  readonly file: string;
}

/**
 * A shadow for a candidate: its namespace is named after the candidate's version, so a replaced
 * candidate starts from the live state again rather than from another candidate's.
 */
export function shadowPolicy(o: {
  candidate: LoadedConfig;
  file: string;
  redis: Redis | Cluster;
  live: StateBackend;
  keyPrefix: string;
  onSignalError?: (signal: string, err: unknown) => void;
}): ShadowPolicy {
  const policy = compilePolicy(o.candidate);
  const namespace = `${o.keyPrefix}-shadow-${policy.version}`;
  const backend = new ShadowStateBackend(new RedisStateBackend(o.redis, namespace), o.live);
  const accounts = new OwnedAccounts({
    backend,
    layout: () => policy.layout,
    ttlMs: () => policy.accountTtlMs,
    maxAccounts: o.candidate.config.state.maxAccounts,
  });
  const engine = new Engine({
    accounts,
    backend,
    policy: () => policy,
    // the other side of a contract reaches the shadow as it reaches the live engine, through the
    // counterpart topic the live engine writes; the shadow's own records are not produced
    counterparts: 'emit',
    ...(o.onSignalError && { onSignalError: o.onSignalError }),
  });
  return { policy, engine, namespace, file: o.file };
}
