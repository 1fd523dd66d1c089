// The engine over an in-process state backend: the production code path (plan, state, signals,
// scoring, flags, the encoded copy) with nothing running, for pure-domain tests in memory.
import type { EnrichedEvent } from '../../src/domain/events.js';
import type { ReviewFlag } from '../../src/domain/flags.js';
import { Engine, type BatchResult, type EngineInput } from '../../src/engine/engine.js';
import type { Policy } from '../../src/engine/policy.js';
import { OwnedAccounts, readStoredAccount } from '../../src/features/owned-accounts.js';
import { decodeAccount } from '../../src/features/persisted.js';
import { MemoryStateBackend } from '../../src/features/state-backend.js';
import { shippedPolicy } from './snapshot.js';

export class MemoryPipeline {
  readonly backend: MemoryStateBackend;
  readonly accounts: OwnedAccounts;
  readonly engine: Engine;
  readonly flags: ReviewFlag[] = [];
  readonly results: BatchResult[] = [];

  constructor(
    readonly policy: Policy = shippedPolicy(),
    o: { backend?: MemoryStateBackend; maxAccounts?: number; now?: () => number } = {},
  ) {
    this.backend = o.backend ?? new MemoryStateBackend();
    this.accounts = new OwnedAccounts({
      backend: this.backend,
      layout: () => this.policy.layout,
      ttlMs: () => this.policy.accountTtlMs,
      maxAccounts: o.maxAccounts ?? 100_000,
      ...(o.now && { now: o.now }),
    });
    this.engine = new Engine({
      accounts: this.accounts,
      backend: this.backend,
      policy: () => this.policy,
      counterparts: 'inline',
    });
  }

  /** One batch, processed and written as the live pipeline would (nothing to produce here). */
  async batch(inputs: (EnrichedEvent | EngineInput)[]): Promise<BatchResult> {
    const r = await this.engine.run(
      inputs.map((i) => ('kind' in i ? i : { kind: 'event' as const, event: i })),
      0,
    );
    this.results.push(r);
    this.flags.push(...r.emissions.map((e) => e.flag));
    return r;
  }

  /** The events in batches of `size` (1 = one by one). */
  async feed(events: EnrichedEvent[], size = 1): Promise<void> {
    for (let i = 0; i < events.length; i += size) await this.batch(events.slice(i, i + size));
  }

  /** An account's stored bytes, decoded. */
  accountOf(accountId: string, bytes: Buffer) {
    return decodeAccount(accountId, bytes, this.policy.layout);
  }

  stored(accountId: string) {
    return readStoredAccount(this.backend, accountId, this.policy.layout);
  }
}
