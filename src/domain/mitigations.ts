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

/**
 * fairflag knows an account's history only from the events it has seen: without a creation event
 * it cannot judge tenure, and "no mitigations" must not read as "no history".
 */
export function historyUnknown(context: AccountContext): boolean {
  return context.createdAt === undefined;
}

export const HISTORY_UNKNOWN =
  'history unknown to fairflag: no account creation event seen, so tenure, verification and contract history may be missing (no mitigation here does not mean no history)';

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

/**
 * The pattern a review clears: the queue, the signal families and the signals of the flag, as
 * one key (the account remembers it with the end of its cooldown). Records written before the
 * signals were part of the key have none.
 */
export interface ReviewPattern {
  queue: string;
  families: string[];
  signals?: string[];
}

export function patternKey(queue: string, signals: readonly { signalId: string; family: string }[]): string {
  const families = [...new Set(signals.map((s) => s.family))].sort();
  const ids = [...new Set(signals.map((s) => s.signalId))].sort();
  return `${queue}:${families.join('+')}|${ids.join(',')}`;
}

export function parsePattern(key: string): ReviewPattern {
  const [head = '', ids] = key.split('|');
  const at = head.indexOf(':');
  const families = head
    .slice(at + 1)
    .split('+')
    .filter(Boolean);
  return {
    queue: head.slice(0, at),
    families,
    ...(ids !== undefined && { signals: ids.split(',').filter(Boolean) }),
  };
}

export function describePattern(p: ReviewPattern): string {
  return `${p.queue}: ${p.families.join(' + ')}${p.signals ? ` (${p.signals.join(', ')})` : ''}`;
}

export interface ClearedReview {
  /** The same pattern, cleared by a reviewer: not raised again until the cooldown ends. */
  covered: boolean;
  /** Listed with the decision (factor 1: a human decision is not a discount on the score). */
  mitigation: AppliedMitigation;
}

/**
 * Principle 5. A decision is covered by a cleared review of its queue when its signals that are
 * not weak bring no family and no signal beyond what the reviewer saw: a new country, a new device
 * or VPN use again do not make a pattern new, a failed-login burst does. Otherwise an earlier clearance is
 * still named, so the reviewer knows a related pattern was cleared.
 */
export function clearedReview(
  queue: string,
  signals: readonly { signalId: string; family: string; weak: boolean }[],
  cleared: ReadonlyMap<string, number>,
  asOf: number,
  m: Config['mitigations'],
): ClearedReview | undefined {
  if (!m.cleared_review.enabled) return undefined;
  let related: { p: ReviewPattern; until: number; news: string[] } | undefined;
  for (const [key, until] of [...cleared].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (until <= asOf) continue;
    const p = parsePattern(key);
    if (p.queue !== queue) continue;
    const news = [
      ...new Set(
        signals.filter((s) => !s.weak && !p.families.includes(s.family)).map((s) => `the ${s.family} family`),
      ),
      ...signals
        .filter(
          (s) => !s.weak && p.families.includes(s.family) && p.signals && !p.signals.includes(s.signalId),
        )
        .map((s) => s.signalId),
    ];
    const ends = `${new Date(until).toISOString()} (in ${formatDuration(until - asOf)})`;
    if (!news.length)
      return {
        covered: true,
        mitigation: {
          id: 'cleared_review',
          factor: 1,
          effect: `a review cleared this pattern (${describePattern(p)}): not raised again until its cooldown ends ${ends}`,
        },
      };
    if (!related) related = { p, until, news };
  }
  if (!related) return undefined;
  return {
    covered: false,
    mitigation: {
      id: 'cleared_review',
      factor: 1,
      effect: `an earlier review cleared a related pattern (${describePattern(related.p)}, cooldown ends ${new Date(related.until).toISOString()}); new here: ${related.news.join(', ')}`,
    },
  };
}
