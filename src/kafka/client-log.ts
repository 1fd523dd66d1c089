// The level a kafkajs log line gets in fairflag's log. kafkajs logs at ERROR every broker answer
// that is not a success, including the ones it retries itself and that are part of normal life
// (a leader moving, a coordinator loading after a restart, a rebalance): those are warnings (or
// information), so that an error in the log means something an operator should look at.
import { createRequire } from 'node:module';
import { logLevel } from 'kafkajs';

type Level = 'error' | 'warn' | 'info' | 'debug';

// kafkajs's own table of protocol errors (not part of its typed API, stable in the locked 2.2.x)
const { errorCodes } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  errorCodes: { type: string; message: string; retriable: boolean }[];
};

/** Broker answers kafkajs retries (or rejoins the group on): expected while a cluster changes. */
const RETRIED = new Set(
  errorCodes
    .filter((e) => e.retriable || e.type === 'REBALANCE_IN_PROGRESS' || e.type === 'UNKNOWN_MEMBER_ID')
    .map((e) => e.message),
);
const REBALANCING = new Set(
  errorCodes.filter((e) => e.type === 'REBALANCE_IN_PROGRESS').map((e) => e.message),
);

/**
 * Said for every idempotent producer whose retries are bounded, as fairflag's are on purpose: a
 * produce that keeps failing returns to the batch loop, which retries it with backoff while the
 * partition is still owned and gives it up when it moves. A flag sent twice that way is the same
 * flag again: the same id and revision, in its headers as in its body.
 */
const BOUNDED_IDEMPOTENT_RETRIES = 'Limiting retries for the idempotent producer';

export function kafkaLogLevel(level: number, entry: { message?: string; error?: unknown }): Level {
  const error = typeof entry.error === 'string' ? entry.error : undefined;
  if (entry.message?.startsWith(BOUNDED_IDEMPOTENT_RETRIES)) return 'info';
  // the runner's own notice that it re-joins a rebalancing group
  if (entry.message?.startsWith('The group is rebalancing') || (error && REBALANCING.has(error)))
    return 'info';
  if (level <= logLevel.WARN && error && RETRIED.has(error)) return 'warn';
  switch (level) {
    case logLevel.ERROR:
      return 'error';
    case logLevel.WARN:
      return 'warn';
    case logLevel.DEBUG:
      return 'debug';
    default:
      return 'info';
  }
}
