// What a config change would do: the same events replayed under two configs, flags compared.
import type { ReviewFlag } from '../domain/flags.js';
import type { LoadedConfig } from '../runtime/config-loader.js';
import type { Logger } from '../runtime/logger.js';
import { replay, type ReplayItem, type ReplayResult } from './replay.js';
import { accountLabels, type Label } from './review-labels.js';

export interface FlagChange {
  accountId: string;
  queue: string;
  before?: ReviewFlag;
  after?: ReviewFlag;
  /** The signals that made the difference, in an analyst's words. */
  why: string[];
  /** What reviewers decided about the account in the replayed period (labelled backtests). */
  label: Label;
}

/** Of the accounts a change starts, stops or changes reviewing: how reviewers had decided. */
export type LabelCounts = Record<Label, number>;

export interface DiffResult {
  base: ReplayResult;
  candidate: ReplayResult;
  added: FlagChange[];
  removed: FlagChange[];
  changed: FlagChange[];
  fires: { signal: string; before: number; after: number }[];
  /** Only when the events came with review outcomes. */
  labels?: { added: LabelCounts; removed: LabelCounts; changed: LabelCounts };
}

/** The last revision of each account's flag per queue. */
function byAccountQueue(flags: Iterable<ReviewFlag>): Map<string, ReviewFlag> {
  const out = new Map<string, ReviewFlag>();
  for (const f of flags) {
    const key = `${f.accountId}|${f.reviewQueue}`;
    const cur = out.get(key);
    if (!cur || f.revision >= cur.revision || f.flagId !== cur.flagId) out.set(key, f);
  }
  return out;
}

export interface FlagComparison {
  added: FlagChange[];
  removed: FlagChange[];
  changed: FlagChange[];
}

/**
 * Whom a second set of flags starts, stops or changes reviewing against a first (the last flag per
 * account and queue each). With the signals that fired per account, says which made the difference.
 */
export function compareFlags(
  beforeFlags: Iterable<ReviewFlag>,
  afterFlags: Iterable<ReviewFlag>,
  o: {
    firedBefore?: (accountId: string) => ReadonlySet<string>;
    firedAfter?: (accountId: string) => ReadonlySet<string>;
    label?: (accountId: string) => Label;
  } = {},
): FlagComparison {
  const before = byAccountQueue(beforeFlags);
  const after = byAccountQueue(afterFlags);
  const label = o.label ?? (() => 'NOT_REVIEWED' as const);
  const result: FlagComparison = { added: [], removed: [], changed: [] };
  for (const [key, f] of before) {
    const g = after.get(key);
    if (!g) {
      const fired = o.firedAfter?.(f.accountId);
      const lost = fired ? f.signals.map((s) => s.id).filter((id) => !fired.has(id)) : [];
      result.removed.push({
        accountId: f.accountId,
        queue: f.reviewQueue,
        before: f,
        label: label(f.accountId),
        why: lost.length
          ? lost.map((id) => `${id} no longer fires`)
          : [
              fired
                ? `same signals fire, but the score or corroboration no longer reaches review`
                : 'not raised by the second policy',
            ],
      });
      continue;
    }
    const sa = new Set(f.signals.map((s) => s.id));
    const sb = new Set(g.signals.map((s) => s.id));
    const why = [
      ...[...sb].filter((id) => !sa.has(id)).map((id) => `${id} now on the flag`),
      ...[...sa].filter((id) => !sb.has(id)).map((id) => `${id} no longer on the flag`),
      ...(f.severity !== g.severity ? [`severity ${f.severity} -> ${g.severity}`] : []),
    ];
    if (why.length)
      result.changed.push({
        accountId: f.accountId,
        queue: f.reviewQueue,
        before: f,
        after: g,
        why,
        label: label(f.accountId),
      });
  }
  for (const [key, g] of after) {
    if (before.has(key)) continue;
    const fired = o.firedBefore?.(g.accountId);
    const gained = fired ? g.signals.map((s) => s.id).filter((id) => !fired.has(id)) : [];
    result.added.push({
      accountId: g.accountId,
      queue: g.reviewQueue,
      after: g,
      label: label(g.accountId),
      why: gained.length
        ? gained.map((id) => `${id} now fires`)
        : [
            fired
              ? 'same signals fire, but now the score or corroboration reaches review'
              : 'raised by the second policy only',
          ],
    });
  }
  const order = (x: FlagChange, y: FlagChange) =>
    x.accountId.localeCompare(y.accountId) || x.queue.localeCompare(y.queue);
  result.added.sort(order);
  result.removed.sort(order);
  result.changed.sort(order);
  return result;
}

export async function diffConfigs(
  items: ReplayItem[],
  base: LoadedConfig,
  candidate: LoadedConfig,
  onProgress?: (phase: 'base' | 'candidate', done: number) => void,
  log?: Logger,
): Promise<DiffResult> {
  const a = await replay({ loaded: base, items, onProgress: (n) => onProgress?.('base', n), log });
  const b = await replay({
    loaded: candidate,
    items,
    onProgress: (n) => onProgress?.('candidate', n),
    log,
  });
  const none = new Set<string>();
  const reviewed = accountLabels(a.outcomes);
  const result: DiffResult = {
    base: a,
    candidate: b,
    ...compareFlags(a.finalFlags.values(), b.finalFlags.values(), {
      firedBefore: (account) => a.firedByAccount.get(account) ?? none,
      firedAfter: (account) => b.firedByAccount.get(account) ?? none,
      label: (account) => reviewed.get(account) ?? 'NOT_REVIEWED',
    }),
    fires: [],
  };
  const signals = new Set([...a.signalFires.keys(), ...b.signalFires.keys()]);
  result.fires = [...signals].sort().map((signal) => ({
    signal,
    before: a.signalFires.get(signal) ?? 0,
    after: b.signalFires.get(signal) ?? 0,
  }));
  if (a.outcomes.length) {
    const counts = (changes: FlagChange[]): LabelCounts => {
      const c: LabelCounts = { CONFIRMED: 0, CLEARED: 0, NEEDS_MORE_INFO: 0, NOT_REVIEWED: 0 };
      for (const x of changes) c[x.label]++;
      return c;
    };
    result.labels = {
      added: counts(result.added),
      removed: counts(result.removed),
      changed: counts(result.changed),
    };
  }
  return result;
}
