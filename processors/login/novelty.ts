// "Seen before?" for values the login processor records (country, device), shared by the
// new-country and new-device signals and by payment.added_after_risky_login.
import type { AccountView } from '../../src/features/view.js';

export type Novelty =
  | { kind: 'new'; lastSeen?: number }
  | { kind: 'known'; lastSeen: number }
  /** The event recorded no such value, or the account has no history to compare with. */
  | { kind: 'unknown'; reason: string };

/**
 * New = not seen in the history window before this event. Families are consumed independently,
 * so a later event (a payment from the same device) may have been recorded first: first-seen
 * tells whether the value existed before this event at all. An account whose only value is this
 * one has nothing to compare with: a first login is not a "new country".
 */
export function novelty(
  subject: AccountView,
  name: string,
  distinctInWindow: number,
  windowMs: number,
): Novelty {
  const seen = subject.lastSeenBefore(name);
  if (!seen.recorded) return { kind: 'unknown', reason: `this event carries no ${name}` };
  const t = subject.asOf;
  const { last, first } = seen;
  let isNew: boolean;
  if (last === undefined) isNew = true;
  else if (first !== undefined && first >= t)
    isNew = true; // only seen at or after this event
  else if (last < t)
    isNew = last <= t - windowMs; // the sighting before this one is known
  else isNew = false; // seen before and after: conservatively, not news
  if (!isNew) return { kind: 'known', lastSeen: last! };
  if (distinctInWindow - 1 <= 0) {
    return { kind: 'unknown', reason: `no other ${name} in the history window to compare with` };
  }
  return last !== undefined && last < t ? { kind: 'new', lastSeen: last } : { kind: 'new' };
}
