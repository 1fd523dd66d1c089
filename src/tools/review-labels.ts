// Review outcomes as labels for a backtest: what reviewers decided about the accounts a replay
// flags, and how precise each signal and queue was among the flags a human reviewed. Pure: the
// replay gathers the flags and outcomes, this joins and counts them.
import type { ReviewOutcome } from '../domain/events.js';
import type { ReviewFlag } from '../domain/flags.js';

/** The decisions a label can be; a decision this version cannot read is no label at all. */
const DECISIONS = ['CONFIRMED', 'CLEARED', 'NEEDS_MORE_INFO'] as const;
export type Label = (typeof DECISIONS)[number] | 'NOT_REVIEWED';
type Decided = ReviewOutcome & { outcome: (typeof DECISIONS)[number] };
const decided = (outcomes: readonly ReviewOutcome[]) =>
  outcomes.filter((o): o is Decided => (DECISIONS as readonly string[]).includes(o.outcome));

export interface LabelledFlag {
  flag: ReviewFlag;
  label: Label;
  /**
   * How the outcome was found: the reviewed flag itself (same id), or, for a flag production
   * never raised (a candidate config, another generation), the account's latest decision taken
   * after the flag would have been created. null when nobody reviewed the account.
   */
  via: 'flag' | 'account' | null;
  outcome?: Decided;
}

/** One account behind a number, with what fired, so an analyst can open it. */
export interface LabelSample {
  accountId: string;
  flagId: string;
  queue: string;
  severity: string;
  score: number;
  signals: string[];
}

export interface LabelTally {
  flags: number;
  confirmed: number;
  cleared: number;
  needsMoreInfo: number;
  notReviewed: number;
  /**
   * Confirmed among the flags with a final decision (confirmed + cleared); null when none has
   * one. "Needs more info" is not a decision yet, so it is in neither side.
   */
  precision: number | null;
  samples: Record<'confirmed' | 'cleared' | 'needsMoreInfo' | 'notReviewed', LabelSample[]>;
}

export interface LabelReport {
  outcomes: number;
  /** Outcomes whose flag and account the replay never flagged (nothing to join them to). */
  unmatched: number;
  overall: LabelTally;
  byQueue: Map<string, LabelTally>;
  bySignal: Map<string, LabelTally>;
}

const SAMPLES = 3;

/** The later of two decisions: by time, then by outcome id, so the join never depends on order. */
const later = (a: ReviewOutcome, b: ReviewOutcome) =>
  a.decidedAt !== b.decidedAt ? a.decidedAt > b.decidedAt : a.outcomeId > b.outcomeId;

function latestBy(outcomes: readonly ReviewOutcome[], key: (o: ReviewOutcome) => string) {
  const out = new Map<string, Decided[]>();
  for (const o of decided(outcomes)) {
    const list = out.get(key(o));
    if (list) list.push(o);
    else out.set(key(o), [o]);
  }
  for (const list of out.values()) list.sort((a, b) => (later(a, b) ? -1 : 1));
  return out;
}

/** Joins each flag (its last revision) to the reviewers' decision about it. */
export function labelFlags(flags: Iterable<ReviewFlag>, outcomes: readonly ReviewOutcome[]): LabelledFlag[] {
  const byFlag = latestBy(outcomes, (o) => o.flagId);
  const byAccount = latestBy(outcomes, (o) => o.accountId);
  const out: LabelledFlag[] = [];
  for (const flag of flags) {
    const own = byFlag.get(flag.flagId)?.[0];
    if (own) {
      out.push({ flag, label: own.outcome, via: 'flag', outcome: own });
      continue;
    }
    const after = byAccount.get(flag.accountId)?.find((o) => o.decidedAt >= flag.createdAt);
    out.push(
      after
        ? { flag, label: after.outcome, via: 'account', outcome: after }
        : { flag, label: 'NOT_REVIEWED', via: null },
    );
  }
  return out.sort((a, b) => (a.flag.flagId < b.flag.flagId ? -1 : a.flag.flagId > b.flag.flagId ? 1 : 0));
}

const emptyTally = (): LabelTally => ({
  flags: 0,
  confirmed: 0,
  cleared: 0,
  needsMoreInfo: 0,
  notReviewed: 0,
  precision: null,
  samples: { confirmed: [], cleared: [], needsMoreInfo: [], notReviewed: [] },
});

const FIELD: Record<Label, keyof LabelTally['samples']> = {
  CONFIRMED: 'confirmed',
  CLEARED: 'cleared',
  NEEDS_MORE_INFO: 'needsMoreInfo',
  NOT_REVIEWED: 'notReviewed',
};

function count(t: LabelTally, l: LabelledFlag): void {
  const field = FIELD[l.label];
  t.flags++;
  t[field]++;
  const samples = t.samples[field];
  if (samples.length < SAMPLES)
    samples.push({
      accountId: l.flag.accountId,
      flagId: l.flag.flagId,
      queue: l.flag.reviewQueue,
      severity: l.flag.severity,
      score: l.flag.score,
      signals: l.flag.signals.map((s) => s.id),
    });
}

function finish(t: LabelTally): LabelTally {
  const decided = t.confirmed + t.cleared;
  t.precision = decided ? t.confirmed / decided : null;
  return t;
}

/** Flags and decisions per queue and per signal on the flag, with a few accounts behind each. */
export function reportLabels(
  labelled: readonly LabelledFlag[],
  outcomes: readonly ReviewOutcome[],
): LabelReport {
  const overall = emptyTally();
  const byQueue = new Map<string, LabelTally>();
  const bySignal = new Map<string, LabelTally>();
  const tallyOf = (m: Map<string, LabelTally>, k: string) => {
    let t = m.get(k);
    if (!t) m.set(k, (t = emptyTally()));
    return t;
  };
  const joined = new Set<string>();
  for (const l of labelled) {
    if (l.outcome) joined.add(l.outcome.outcomeId);
    count(overall, l);
    count(tallyOf(byQueue, l.flag.reviewQueue), l);
    for (const id of new Set(l.flag.signals.map((s) => s.id))) count(tallyOf(bySignal, id), l);
  }
  const flaggedAccounts = new Set(labelled.map((l) => l.flag.accountId));
  const flagIds = new Set(labelled.map((l) => l.flag.flagId));
  const sorted = (m: Map<string, LabelTally>) =>
    new Map([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, t]) => [k, finish(t)]));
  return {
    outcomes: outcomes.length,
    unmatched: outcomes.filter(
      (o) => !joined.has(o.outcomeId) && !flagIds.has(o.flagId) && !flaggedAccounts.has(o.accountId),
    ).length,
    overall: finish(overall),
    byQueue: sorted(byQueue),
    bySignal: sorted(bySignal),
  };
}

/** The decision reviewers took about an account, latest first: for accounts a change adds or drops. */
export function accountLabels(outcomes: readonly ReviewOutcome[]): Map<string, Label> {
  return new Map([...latestBy(outcomes, (o) => o.accountId)].map(([k, list]) => [k, list[0]!.outcome]));
}

/** The report as plain JSON (maps become objects keyed by queue and by signal). */
export function labelsJson(l: LabelReport) {
  return {
    outcomes: l.outcomes,
    unmatched: l.unmatched,
    overall: l.overall,
    byQueue: Object.fromEntries(l.byQueue),
    bySignal: Object.fromEntries(l.bySignal),
  };
}
