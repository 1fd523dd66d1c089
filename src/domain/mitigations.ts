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

export interface MitigationInput {
  asOf: number;
  context: AccountContext;
  contracts: ContractRecord[];
}

/** Mitigations that depend on the account alone (not on the pattern under review). */
export function accountMitigations(input: MitigationInput, m: Config['mitigations']): AppliedMitigation[] {
  const out: AppliedMitigation[] = [];
  const { asOf, context: c } = input;
  const times = (f: number) => `score x ${f}`;
  if (m.tenure.enabled && c.createdAt !== undefined && asOf - c.createdAt >= m.tenure.minAge) {
    out.push({
      id: 'tenure',
      factor: m.tenure.factor,
      effect: `account ${formatDuration(asOf - c.createdAt)} old (at least ${formatDuration(m.tenure.minAge)}): ${times(m.tenure.factor)}`,
    });
  }
  if (m.verified_identity.enabled && c.identityVerified) {
    out.push({
      id: 'verified_identity',
      factor: m.verified_identity.factor,
      effect: `identity verified: ${times(m.verified_identity.factor)}`,
    });
  }
  const h = m.contract_history;
  const contracts = c.lifetimeCompletedContracts ?? 0;
  const hours = c.lifetimePaidHours ?? 0;
  if (h.enabled && (contracts >= h.minCompletedContracts || hours >= h.minPaidHours)) {
    out.push({
      id: 'contract_history',
      factor: h.factor,
      effect: `${contracts} completed contracts, ${hours} paid hours: ${times(h.factor)}`,
    });
  }
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
      out.push({
        id: 'long_running_contract',
        factor: l.factor,
        effect: `contract ${running.contractId} with ${running.counterpart} running ${formatDuration(asOf - running.startedAt!)}, last paid ${formatDuration(asOf - running.lastPaidAt!)} ago: ${times(l.factor)}`,
      });
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
