// The signals report: what reviewers decided, per period and queue and per signal, with the
// number of flags behind each figure. Pure: counts the review records the state backend keeps.
import type { ReviewRecord } from '../features/state-backend.js';

export const PERIODS = ['day', 'week', 'month'] as const;
export type Period = (typeof PERIODS)[number];

/** A UTC day, the Monday of a UTC week, or a UTC month. */
export function periodOf(t: number, period: Period): string {
  const d = new Date(t);
  if (period === 'month') return d.toISOString().slice(0, 7);
  if (period === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  return d.toISOString().slice(0, 10);
}

export interface ReviewTally {
  /** Distinct flags with at least one decision: the denominator people ask for. */
  reviewedFlags: number;
  confirmed: number;
  cleared: number;
  needsMoreInfo: number;
  /** confirmed / (confirmed + cleared); null with no final decision. */
  precision: number | null;
}

export interface ReviewReport {
  since: number;
  until: number;
  period: Period;
  records: number;
  byPeriodQueue: ({ period: string; queue: string } & ReviewTally)[];
  bySignal: ({ signal: string } & ReviewTally)[];
}

class Tally {
  private readonly flags = new Set<string>();
  confirmed = 0;
  cleared = 0;
  needsMoreInfo = 0;
  add(r: ReviewRecord): void {
    this.flags.add(r.flagId);
    if (r.outcome === 'CONFIRMED') this.confirmed++;
    else if (r.outcome === 'CLEARED') this.cleared++;
    else if (r.outcome === 'NEEDS_MORE_INFO') this.needsMoreInfo++;
  }
  done(): ReviewTally {
    const decided = this.confirmed + this.cleared;
    return {
      reviewedFlags: this.flags.size,
      confirmed: this.confirmed,
      cleared: this.cleared,
      needsMoreInfo: this.needsMoreInfo,
      precision: decided ? this.confirmed / decided : null,
    };
  }
}

export function reviewReport(
  records: readonly ReviewRecord[],
  o: { since: number; until: number; period: Period },
): ReviewReport {
  const byPeriodQueue = new Map<string, Tally>();
  const bySignal = new Map<string, Tally>();
  const tallyOf = (m: Map<string, Tally>, k: string) => {
    let t = m.get(k);
    if (!t) m.set(k, (t = new Tally()));
    return t;
  };
  for (const r of records) {
    tallyOf(byPeriodQueue, `${periodOf(r.decidedAt, o.period)}\n${r.queue}`).add(r);
    for (const s of new Set(r.signals)) tallyOf(bySignal, s).add(r);
  }
  const sorted = <T>(m: Map<string, Tally>, row: (k: string, t: ReviewTally) => T) =>
    [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, t]) => row(k, t.done()));
  return {
    ...o,
    records: records.length,
    byPeriodQueue: sorted(byPeriodQueue, (k, t) => {
      const [period = '', queue = ''] = k.split('\n');
      return { period, queue, ...t };
    }),
    bySignal: sorted(bySignal, (signal, t) => ({ signal, ...t })),
  };
}
