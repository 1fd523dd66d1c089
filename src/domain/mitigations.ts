// History counts (principle 4): what dampens a score for this account, and by how much.
import { formatDuration } from '../../config/params.js';
import type { Config } from '../../config/schema.js';
import type { AccountContext, ContractRecord } from '../features/model.js';

export interface AppliedMitigation {
  id: string;
  factor: number;
  /** Why it applies, for the analyst and the flag. */
  effect: string;
}

/** What the account has that argues for it, and the review queues (concerns) it speaks to. */
export interface AccountMitigation extends AppliedMitigation {
  appliesTo: readonly string[];
  /** What the account has, without its effect on the score. */
  fact: string;
}

/** A mitigation the account has that says nothing about the concern under review. */
export interface NotApplicableMitigation {
  id: string;
  reason: string;
}

/**
 * Splits the account's mitigations for one queue: verified identity says who someone is, not
 * whether they deliver, so it must not dampen a contracts concern (config: mitigations.*.appliesTo).
 */
export function mitigationsFor(
  queue: string,
  mitigations: readonly AccountMitigation[],
): { applied: AppliedMitigation[]; notApplicable: NotApplicableMitigation[] } {
  const applied: AppliedMitigation[] = [];
  const notApplicable: NotApplicableMitigation[] = [];
  for (const { appliesTo, fact, ...m } of mitigations) {
    if (appliesTo.includes(queue)) applied.push(m);
    else
      notApplicable.push({
        id: m.id,
        reason: `${fact}, but it says nothing about ${queue} concerns (it dampens ${appliesTo.join(', ')})`,
      });
  }
  return { applied, notApplicable };
}

export interface MitigationInput {
  asOf: number;
  context: AccountContext;
  contracts: ContractRecord[];
}

/** Mitigations that depend on the account alone (not on the pattern under review). */
export function accountMitigations(input: MitigationInput, m: Config['mitigations']): AccountMitigation[] {
  const out: AccountMitigation[] = [];
  const { asOf, context: c } = input;
  const add = (id: string, cfg: { factor: number; appliesTo: string[] }, fact: string) =>
    out.push({
      id,
      factor: cfg.factor,
      appliesTo: cfg.appliesTo,
      fact,
      effect: `${fact}: score x ${cfg.factor}`,
    });
  if (m.tenure.enabled && c.createdAt !== undefined && asOf - c.createdAt >= m.tenure.minAge) {
    add(
      'tenure',
      m.tenure,
      `account ${formatDuration(asOf - c.createdAt)} old (at least ${formatDuration(m.tenure.minAge)})`,
    );
  }
  if (m.verified_identity.enabled && c.identityVerified)
    add('verified_identity', m.verified_identity, 'identity verified');
  const h = m.contract_history;
  const contracts = c.lifetimeCompletedContracts ?? 0;
  const hours = c.lifetimePaidHours ?? 0;
  if (h.enabled && (contracts >= h.minCompletedContracts || hours >= h.minPaidHours))
    add('contract_history', h, `${contracts} completed contracts, ${hours} paid hours`);
  const l = m.long_running_contract;
  if (l.enabled) {
    const running = input.contracts.find(
      (k) =>
        k.startedAt !== undefined &&
        k.endedAt === undefined &&
        asOf - k.startedAt >= l.minAge &&
        k.lastPaidAt !== undefined &&
        asOf - k.lastPaidAt <= l.maxPaymentGap,
    );
    if (running) {
      const sincePaid = asOf - running.lastPaidAt!;
      add(
        'long_running_contract',
        l,
        `contract ${running.contractId} with ${running.counterpart} running ${formatDuration(asOf - running.startedAt!)}, ${sincePaid === 0 ? 'paid at this event' : `last paid ${formatDuration(sincePaid)} ago`}`,
      );
    }
  }
  return out;
}

/** The pattern a review clears: the queue and the signal families of the flag. */
export function reviewPattern(queue: string, families: Iterable<string>): string {
  return `${queue}:${[...new Set(families)].sort().join('+')}`;
}

export function clearedReviewMitigation(
  pattern: string,
  clearedUntil: number | undefined,
  asOf: number,
  m: Config['mitigations'],
): AppliedMitigation | undefined {
  if (!m.cleared_review.enabled || clearedUntil === undefined || clearedUntil <= asOf) return undefined;
  return {
    id: 'cleared_review',
    factor: m.cleared_review.factor,
    effect: `a review cleared this pattern (${pattern}); cooldown ends in ${formatDuration(clearedUntil - asOf)}: score x ${m.cleared_review.factor}`,
  };
}
