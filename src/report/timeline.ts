// An account's timeline in a replay or diff report: its events from the replay input, the signals
// its flags carry with their evidence (the evidence events are marked), every flag revision and
// the reviewers' decisions, in time order.
import type { ReviewOutcome } from '../domain/events.js';
import type { ReviewFlag } from '../domain/flags.js';
import type { ReplayItem } from '../tools/replay.js';
import { REVIEW_OUTCOME } from '../tools/replay.js';
import { accountLink, html, num, time, timelineId, type SafeHtml } from './html.js';

/**
 * Timelines per report, for the accounts first in its table: a page with thousands would be too
 * heavy to open. The accounts beyond are listed in the table without a link, and the page says so.
 */
export const MAX_TIMELINES = 500;

/** The accounts (in table order) that get a timeline. */
export function timelined(accountsInOrder: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const a of accountsInOrder) {
    if (out.size >= MAX_TIMELINES) break;
    out.add(a);
  }
  return out;
}

/** The account linked to its timeline when it has one. */
export function accountCell(accountId: string, withTimeline: ReadonlySet<string>): SafeHtml {
  return withTimeline.has(accountId) ? accountLink(accountId) : html`<code>${accountId}</code>`;
}

/** The heading of the timelines, saying how many accounts have none. */
export function timelinesHeading(withTimeline: ReadonlySet<string>, accounts: number): SafeHtml {
  if (!withTimeline.size) return html``;
  return html`<h2>Timelines</h2>
    ${accounts > withTimeline.size ? html`<p class="note">The first ${withTimeline.size} accounts of the table have a timeline; ${accounts - withTimeline.size} more are listed without one.</p>` : ''}`;
}

/** Events shown per account; the evidence of its flags is always shown. */
export const MAX_TIMELINE_EVENTS = 300;

interface InputEvent {
  family: string;
  record: Record<string, unknown>;
}

/** The fields worth a reviewer's eye, per family, in the order shown. */
const FIELDS: Record<string, string[]> = {
  login: ['ip', 'deviceId', 'sessionId'],
  ip: ['ip', 'source', 'deviceId', 'sessionId'],
  payment: ['methodType', 'methodId', 'instrumentFingerprint', 'ip', 'deviceId'],
  contract: [
    'contractId',
    'clientAccountId',
    'freelancerAccountId',
    'amount',
    'currency',
    'rating',
    'disputeReason',
    'ip',
  ],
  account: [
    'accountType',
    'lifetimeCompletedContracts',
    'lifetimePaidHours',
    'lifetimeEarnings',
    'ip',
    'deviceId',
  ],
};

const text = (v: unknown) => (typeof v === 'object' ? JSON.stringify(v) : String(v as string));

/** The input events of the given accounts (a contract's both sides), in input order. */
export function eventsByAccount(
  items: readonly ReplayItem[],
  accounts: ReadonlySet<string>,
): Map<string, InputEvent[]> {
  const out = new Map<string, InputEvent[]>();
  for (const item of items) {
    if (item.error || !item.family || item.family === REVIEW_OUTCOME) continue;
    const record = item.record as Record<string, unknown>;
    const sides = new Set(
      [record['accountId'], record['clientAccountId'], record['freelancerAccountId']].filter(
        (a): a is string => typeof a === 'string' && accounts.has(a),
      ),
    );
    for (const a of sides) {
      const list = out.get(a) ?? [];
      list.push({ family: item.family, record });
      out.set(a, list);
    }
  }
  return out;
}

interface Row {
  at: number;
  order: number;
  kind: 'event' | 'signal' | 'flag' | 'outcome';
  what: SafeHtml | string;
  details: SafeHtml | string;
  evidenceFor?: string[];
}

export interface TimelineInput {
  accountId: string;
  events: InputEvent[];
  /** Every revision of the account's flags, each with what produced it (e.g. "base", "candidate"). */
  flags: { flag: ReviewFlag; tag?: string }[];
  outcomes: ReviewOutcome[];
  /** A line under the heading (the flag's label, the change). */
  summary?: SafeHtml | string;
}

export function timelineSection(t: TimelineInput): SafeHtml {
  const rows: Row[] = [];
  // the signals on the flags, each observation once, with what it names as evidence
  const evidence = new Map<string, Set<string>>();
  const seenSignals = new Set<string>();
  for (const { flag, tag } of t.flags) {
    for (const s of flag.signals) {
      for (const id of s.evidenceEventIds) evidence.set(id, (evidence.get(id) ?? new Set()).add(s.id));
      const key = `${tag ?? ''}|${s.id}|${s.observedAt}`;
      if (seenSignals.has(key)) continue;
      seenSignals.add(key);
      rows.push({
        at: s.observedAt,
        order: 1,
        kind: 'signal',
        what: html`signal <code>${s.id}</code>${tag ? html` <span class="tag">${tag}</span>` : ''}`,
        details: html`${num(s.observed)} vs ${num(s.threshold)} (${s.window}); weight ${num(s.weight)} x
          strength ${num(s.strength)} = ${num(s.contribution)}. ${s.summary}
          <div class="muted">
            evidence: ${s.evidenceEventIds.map((id, i) => html`${i ? ', ' : ''}<code>${id}</code>`)}
          </div>`,
      });
    }
    rows.push({
      at: flag.updatedAt,
      order: 2,
      kind: 'flag',
      what: html`flag rev ${flag.revision}${tag ? html` <span class="tag">${tag}</span>` : ''}`,
      details: html`review in <b>${flag.reviewQueue}</b>,
        <span class="tag sev-${flag.severity}">${flag.severity}</span> score ${num(flag.score)} (review at
        ${num(flag.reviewThreshold)}); signals
        ${flag.signals.map((s) => s.id).join(', ')}${
          flag.mitigations.length
            ? html`; mitigations ${flag.mitigations.map((m) => `${m.id} x${m.factor}`).join(', ')}`
            : ''
        }${flag.historyUnknown ? '; history unknown to fairflag' : ''}
        <div class="muted">
          flag <code>${flag.flagId}</code>, triggered by <code>${flag.triggeringEventId}</code>
        </div>`,
    });
  }
  for (const o of t.outcomes)
    rows.push({
      at: o.decidedAt,
      order: 3,
      kind: 'outcome',
      what: html`review outcome <span class="tag label-${o.outcome}">${o.outcome}</span>`,
      details: html`flag <code>${o.flagId}</code>${o.noteCategory ? html`, note ${o.noteCategory}` : ''}`,
    });

  // the latest events, and every evidence event whatever its age
  const events = t.events.map((e) => ({ e, id: String(e.record['eventId']) }));
  const keep = new Set(events.slice(-MAX_TIMELINE_EVENTS).map((x) => x.id));
  for (const x of events) if (evidence.has(x.id)) keep.add(x.id);
  const shown = events.filter((x) => keep.has(x.id));
  for (const { e, id } of shown) {
    const r = e.record;
    const action = r['outcome'] ?? r['action'] ?? '';
    const fields = (FIELDS[e.family] ?? [])
      .filter((f) => r[f] !== null && r[f] !== undefined)
      .map((f) => html`${f} <code>${text(r[f])}</code>`);
    const sigs = evidence.get(id);
    rows.push({
      at: Number(r['occurredAt']),
      order: 0,
      kind: 'event',
      what: html`${e.family} ${text(action)}`,
      details: html`${fields.map((f, i) => html`${i ? ', ' : ''}${f}`)}
        <div class="muted">
          event <code>${id}</code>${sigs ? html` · evidence for ${[...sigs].join(', ')}` : ''}
        </div>`,
      ...(sigs && { evidenceFor: [...sigs] }),
    });
  }
  rows.sort((a, b) => a.at - b.at || a.order - b.order);
  const hidden = events.length - shown.length;
  return html`<section class="timeline" id="${timelineId(t.accountId)}" data-account="${t.accountId}">
    <h3>Timeline of <code>${t.accountId}</code></h3>
    ${t.summary ? html`<p>${t.summary}</p>` : ''}
    <p class="muted">
      ${events.length} input event(s) of this
      account${
        hidden ? `, the latest ${shown.length} and the evidence shown (${hidden} earlier not shown)` : ''
      };
      ${t.flags.length} flag message(s); ${t.outcomes.length} review outcome(s).
    </p>
    <table class="timeline-rows">
      <thead>
        <tr>
          <th>time (UTC)</th>
          <th>what</th>
          <th>details</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (r) =>
            html`<tr class="kind-${r.kind}${r.evidenceFor ? ' evidence' : ''}">
              <td class="mono">${time(r.at)}</td>
              <td>${r.what}</td>
              <td>${r.details}</td>
            </tr> `,
        )}
      </tbody>
    </table>
    <p><a href="#top">back to the top</a></p>
  </section>`;
}
