// "Seen before?" for values the login processor records (country, device), shared by the
// new-country and new-device signals and by payment.added_after_risky_login.
import type { AccountView } from '../../src/features/view.js';

export type Novelty =
  | { kind: 'new'; lastSeen?: number }
  | { kind: 'known'; lastSeen: number }
  /** The event recorded no such value, or the account has no history to compare with. */
  | { kind: 'unknown'; reason: string };

/**
 * New = not seen in the history window before this event. An account whose only value is this
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
  const last = seen.lastSeen;
  // Seen at or after this event's own time: a replay or an out-of-order event, not news.
  if (last !== undefined && last > subject.asOf - windowMs) return { kind: 'known', lastSeen: last };
  const others = distinctInWindow - 1;
  if (others <= 0)
    return { kind: 'unknown', reason: `no other ${name} in the history window to compare with` };
  return last === undefined ? { kind: 'new' } : { kind: 'new', lastSeen: last };
}
