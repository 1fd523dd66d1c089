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
function byAccountQueue(r: ReplayResult): Map<string, ReviewFlag> {
  const out = new Map<string, ReviewFlag>();
  for (const f of r.finalFlags.values()) out.set(`${f.accountId}|${f.reviewQueue}`, f);
  return out;
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
  const before = byAccountQueue(a);
  const after = byAccountQueue(b);
  const fired = (r: ReplayResult, account: string) => r.firedByAccount.get(account) ?? new Set<string>();
  const result: DiffResult = { base: a, candidate: b, added: [], removed: [], changed: [], fires: [] };
  const reviewed = accountLabels(a.outcomes);
  const label = (accountId: string): Label => reviewed.get(accountId) ?? 'NOT_REVIEWED';
  for (const [key, f] of before) {
    const g = after.get(key);
    if (!g) {
      const lost = f.signals.map((s) => s.id).filter((id) => !fired(b, f.accountId).has(id));
      result.removed.push({
        accountId: f.accountId,
        queue: f.reviewQueue,
        before: f,
        label: label(f.accountId),
        why: lost.length
          ? lost.map((id) => `${id} no longer fires`)
          : [`same signals fire, but the score or corroboration no longer reaches review`],
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
    const gained = g.signals.map((s) => s.id).filter((id) => !fired(a, g.accountId).has(id));
    result.added.push({
      accountId: g.accountId,
      queue: g.reviewQueue,
      after: g,
      label: label(g.accountId),
      why: gained.length
        ? gained.map((id) => `${id} now fires`)
        : ['same signals fire, but now the score or corroboration reaches review'],
    });
  }
  const signals = new Set([...a.signalFires.keys(), ...b.signalFires.keys()]);
  result.fires = [...signals].sort().map((signal) => ({
    signal,
    before: a.signalFires.get(signal) ?? 0,
    after: b.signalFires.get(signal) ?? 0,
  }));
  const order = (x: FlagChange, y: FlagChange) =>
    x.accountId.localeCompare(y.accountId) || x.queue.localeCompare(y.queue);
  result.added.sort(order);
  result.removed.sort(order);
  result.changed.sort(order);
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
