// The diff report: per signal, fire counts and precision under the base and the candidate config
// side by side, the accounts the change starts, stops or changes reviewing (score and severity
// before and after, what reviewers had decided), and each one's timeline under both configs.
import type { DiffResult, FlagChange } from '../tools/diff.js';
import type { ReplayItem } from '../tools/replay.js';
import { chartFigure, type ChartSpec } from './charts.js';
import { html, num, page, table } from './html.js';
import { precisionOf, signalBars } from './replay-report.js';
import { accountCell, eventsByAccount, timelined, timelineSection, timelinesHeading } from './timeline.js';

export interface DiffReportInput {
  diff: DiffResult;
  items: readonly ReplayItem[];
  source: string;
  /** The two configs as the analyst named them (files). */
  baseName: string;
  candidateName: string;
  generatedAt?: number;
}

const BASE = { colour: '#56B4E9' };
const CANDIDATE = { colour: '#E69F00' };

export function diffReport(input: DiffReportInput): string {
  const d = input.diff;
  const charts: ChartSpec[] = [];
  const fires = [...d.fires].sort(
    (a, b) => Math.max(b.before, b.after) - Math.max(a.before, a.after) || a.signal.localeCompare(b.signal),
  );
  if (fires.length)
    charts.push(
      signalBars(
        'fires',
        'Fire counts per signal, before and after',
        fires.map((f) => f.signal),
        [
          { name: 'base', values: fires.map((f) => f.before), ...BASE },
          { name: 'candidate', values: fires.map((f) => f.after), ...CANDIDATE },
        ],
        { title: 'observations' },
      ),
    );
  const a = d.base.labels?.bySignal;
  const b = d.candidate.labels?.bySignal;
  if (a?.size || b?.size) {
    const signals = [...new Set([...(a?.keys() ?? []), ...(b?.keys() ?? [])])].sort();
    charts.push(
      signalBars(
        'precision',
        'Precision per signal on the flag, before and after',
        signals,
        [
          { name: 'base', values: signals.map((s) => precisionOf(a, s)), ...BASE },
          { name: 'candidate', values: signals.map((s) => precisionOf(b, s)), ...CANDIDATE },
        ],
        { title: 'precision', percent: true, max: 1 },
      ),
    );
  }

  const changes: { kind: string; c: FlagChange }[] = [
    ...d.removed.map((c) => ({ kind: 'stops reviewing', c })),
    ...d.added.map((c) => ({ kind: 'starts reviewing', c })),
    ...d.changed.map((c) => ({ kind: 'reviews differently', c })),
  ];
  const changedAccounts = new Set(changes.map((x) => x.c.accountId));
  const shown = timelined([...changedAccounts]);
  const accounts = [...shown].sort();
  const events = eventsByAccount(input.items, shown);
  const withLabels = !!d.labels;
  const severity = (s: string | undefined) =>
    s ? html`<span class="tag sev-${s}">${s}</span>` : html`<span class="muted">none</span>`;
  const counts = (what: string, c: Record<string, number> | undefined) =>
    c ? html`<li><b>${c['CONFIRMED']} / ${c['CLEARED']}</b>confirmed / cleared of those it ${what}</li>` : '';

  const body = html` <p class="note">
      base: <code>${input.baseName}</code> (${d.base.configVersion}); candidate:
      <code>${input.candidateName}</code> (${d.candidate.configVersion})
    </p>
    <ul class="summary">
      <li><b>${d.base.eventsRead}</b>records replayed</li>
      <li><b>${d.base.finalFlags.size} → ${d.candidate.finalFlags.size}</b>flags</li>
      <li><b>${d.removed.length}</b>stops reviewing</li>
      <li><b>${d.added.length}</b>starts reviewing</li>
      <li><b>${d.changed.length}</b>reviews differently</li>
      ${counts('stops reviewing', d.labels?.removed)} ${counts('starts reviewing', d.labels?.added)}
    </ul>
    <h2>Signals</h2>
    ${
      charts.length
        ? html`<div class="charts">
            ${charts.map((c) =>
              chartFigure(
                c,
                c.id === 'precision' && c.series.some((s) => s.values.includes(null))
                  ? 'No bar: no flag with that signal was confirmed or cleared under that config.'
                  : undefined,
              ),
            )}
          </div>`
        : html`<p>No signal fired under either config.</p>`
    }
    ${withLabels ? '' : html`<p class="note">No review outcomes in the input, so no precision: add lines of family <code>review_outcome</code> for a labelled backtest.</p>`}
    <h2>Changed accounts (${changes.length})</h2>
    ${
      changes.length
        ? table(
            [
              'change',
              'account',
              'queue',
              'score before → after',
              'severity before → after',
              ...(withLabels ? ['label'] : []),
              'why',
            ],
            changes.map(({ kind, c }) => [
              kind,
              accountCell(c.accountId, shown),
              c.queue,
              html`${num(c.before?.score)} → ${num(c.after?.score)}`,
              html`${severity(c.before?.severity)} → ${severity(c.after?.severity)}`,
              ...(withLabels ? [html`<span class="tag label-${c.label}">${c.label}</span>`] : []),
              html`${c.why.map((w, i) => html`${i ? html`<br />` : ''}${w}`)}`,
            ]),
            'changes',
          )
        : html`<p>The candidate flags the same accounts the same way.</p>`
    }
    ${timelinesHeading(shown, changedAccounts.size)}
    ${accounts.map((acct) =>
      timelineSection({
        accountId: acct,
        events: events.get(acct) ?? [],
        flags: [
          ...d.base.flags.filter((f) => f.accountId === acct).map((flag) => ({ flag, tag: 'base' })),
          ...d.candidate.flags
            .filter((f) => f.accountId === acct)
            .map((flag) => ({ flag, tag: 'candidate' })),
        ],
        outcomes: d.base.outcomes.filter((o) => o.accountId === acct),
        summary: html`${changes
          .filter((x) => x.c.accountId === acct)
          .map(
            ({ kind, c }) =>
              html`<span class="tag">${c.queue}</span>${kind}:
                ${c.why.join('; ')}${withLabels ? html` <span class="tag label-${c.label}">${c.label}</span>` : ''} `,
          )}`,
      }),
    )}`;
  return page({
    title: 'fairflag diff',
    subtitle: `${input.source}: ${input.baseName} → ${input.candidateName}`,
    body,
    charts,
    ...(input.generatedAt !== undefined && { generatedAt: input.generatedAt }),
  });
}
