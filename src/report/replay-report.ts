// The replay report: how the replayed accounts scored per queue against the review threshold,
// how often each signal fired (and was deciding), how precise each signal was when the input
// held review outcomes, the flagged accounts, and each one's timeline.
import type { LabelTally } from '../tools/review-labels.js';
import type { ReplayItem, ReplayResult } from '../tools/replay.js';
import { binIndex, binsAround, chartFigure, type ChartSpec } from './charts.js';
import { html, num, page, percent, table, type SafeHtml } from './html.js';
import { accountCell, eventsByAccount, timelined, timelineSection, timelinesHeading } from './timeline.js';

export interface ReplayReportInput {
  result: ReplayResult;
  /** The replayed input, for the flagged accounts' events. */
  items: readonly ReplayItem[];
  /** What was replayed (a file, a range of the topics). */
  source: string;
  generatedAt?: number;
}

/** One histogram per queue: scored accounts per score bin, stacked by whether they went to review. */
export function scoreCharts(r: ReplayResult, idPrefix = 'scores'): ChartSpec[] {
  const byQueue = new Map<string, { score: number; threshold: number; reviewed: boolean }[]>();
  for (const s of r.scores.values()) {
    const list = byQueue.get(s.queue) ?? [];
    list.push({ score: s.score, threshold: s.threshold, reviewed: s.severity !== undefined });
    byQueue.set(s.queue, list);
  }
  return [...byQueue]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([queue, list]) => {
      const threshold = Math.max(...list.map((x) => x.threshold));
      const bins = binsAround(
        list.map((x) => x.score),
        threshold,
      );
      const reviewed = bins.from.map(() => 0);
      const not = bins.from.map(() => 0);
      for (const x of list) (x.reviewed ? reviewed : not)[binIndex(bins, x.score)]!++;
      return {
        id: `${idPrefix}-${queue}`,
        kind: 'bar' as const,
        title: `Queue ${queue}: last score of ${list.length} scored account(s)`,
        labels: bins.labels,
        series: [
          { name: 'not reviewed', values: not, colour: '#56B4E9' },
          { name: 'went to review', values: reviewed, colour: '#D55E00' },
        ],
        x: { title: 'score' },
        y: { title: 'accounts' },
        stacked: true,
        gapless: true,
        marker: { at: bins.thresholdEdge, label: `review at ${num(threshold)}` },
      };
    });
}

/** A horizontal bar per signal; signals in the given order. */
export function signalBars(
  id: string,
  title: string,
  signals: string[],
  series: { name: string; values: (number | null)[]; colour?: string }[],
  y: ChartSpec['y'],
): ChartSpec {
  return {
    id,
    kind: 'bar',
    title,
    labels: signals,
    series,
    x: { title: 'signal' },
    y,
    horizontal: true,
    tall: signals.length > 8,
  };
}

export const precisionOf = (m: Map<string, LabelTally> | undefined, signal: string) =>
  m?.get(signal)?.precision ?? null;

function labelTable(name: string, m: Map<string, LabelTally>): SafeHtml {
  return table(
    [name, 'flags', 'confirmed', 'cleared', 'more info', 'not reviewed', 'precision'],
    [...m].map(([k, t]) => [
      html`<code>${k}</code>`,
      t.flags,
      t.confirmed,
      t.cleared,
      t.needsMoreInfo,
      t.notReviewed,
      percent(t.precision),
    ]),
  );
}

export function rejectedTable(r: ReplayResult, max = 200): SafeHtml {
  if (!r.rejected.length) return html``;
  return html`<h2>Input not used (${r.rejected.length})</h2>
    ${table(
      ['where', 'reason', 'detail'],
      r.rejected.slice(0, max).map((x) => [x.where, x.reason, x.detail]),
    )}
    ${r.rejected.length > max ? html`<p class="note">${r.rejected.length - max} more not listed; the text output lists them all.</p>` : ''}`;
}

export function replayReport(input: ReplayReportInput): string {
  const r = input.result;
  const charts: ChartSpec[] = scoreCharts(r);
  const fires = [...r.signalFires].sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  if (fires.length)
    charts.push(
      signalBars(
        'fires',
        'Fire counts per signal',
        fires.map(([s]) => s),
        [
          { name: 'fired', values: fires.map(([, n]) => n) },
          { name: 'deciding', values: fires.map(([s]) => r.deciding.get(s) ?? 0) },
        ],
        { title: 'observations' },
      ),
    );
  if (r.labels?.bySignal.size) {
    const signals = [...r.labels.bySignal.keys()];
    charts.push(
      signalBars(
        'precision',
        'Precision per signal on the flag (confirmed / (confirmed + cleared))',
        signals,
        [
          {
            name: 'precision',
            values: signals.map((s) => precisionOf(r.labels?.bySignal, s)),
            colour: '#009E73',
          },
        ],
        { title: 'precision', percent: true, max: 1 },
      ),
    );
  }

  const labelled = [...r.labelled].sort(
    (a, b) =>
      b.flag.score - a.flag.score ||
      a.flag.accountId.localeCompare(b.flag.accountId) ||
      a.flag.reviewQueue.localeCompare(b.flag.reviewQueue),
  );
  const flagged = new Set(labelled.map((l) => l.flag.accountId));
  const shown = timelined(labelled.map((l) => l.flag.accountId));
  const events = eventsByAccount(input.items, shown);
  const accounts = [...shown].sort();
  const withLabels = r.outcomes.length > 0;

  const body = html` <ul class="summary">
      <li><b>${r.eventsRead}</b>records read</li>
      <li><b>${r.accepted}</b>accepted</li>
      <li><b>${r.rejected.length}</b>not used</li>
      <li><b>${r.scores.size}</b>account-queues scored</li>
      <li><b>${r.finalFlags.size}</b>flags (${r.flags.length} messages)</li>
      <li><b>${flagged.size}</b>accounts to review</li>
      ${
        withLabels
          ? html`<li><b>${r.outcomes.length}</b>review outcomes</li>
              <li><b>${percent(r.labels?.overall.precision)}</b>precision overall</li>`
          : ''
      }
    </ul>
    <h2>Scores and signals</h2>
    <p class="note">
      Each account's last score per queue (only accounts on which some signal fired are scored). An account at
      or over the threshold may still not go to review: its signals must corroborate each other, and a pattern
      a reviewer cleared is not raised again during its cooldown.
    </p>
    ${
      charts.length
        ? html`<div class="charts">
            ${charts.map((c) =>
              chartFigure(
                c,
                c.id === 'precision' && c.series.some((s) => s.values.includes(null))
                  ? 'No bar: no flag with that signal was confirmed or cleared.'
                  : undefined,
              ),
            )}
          </div>`
        : html`<p>No signal fired: nothing was scored.</p>`
    }
    ${
      r.labels
        ? html`<h2>Review outcomes as labels</h2>
            <p class="note">
              ${r.labels.outcomes} outcome(s), ${r.labels.unmatched} about accounts this replay does not flag.
              Precision = confirmed / (confirmed + cleared); "more info" is not a decision yet.
            </p>
            ${labelTable('queue', r.labels.byQueue)} ${labelTable('signal on the flag', r.labels.bySignal)}`
        : html`<p class="note">
            The input held no review outcomes, so there is no precision: add lines of family
            <code>review_outcome</code> (or use --from-kafka) for a labelled backtest.
          </p>`
    }
    <h2>Flagged accounts (${labelled.length} flag(s))</h2>
    ${
      labelled.length
        ? table(
            ['account', 'queue', 'severity', 'score', 'signals', ...(withLabels ? ['label'] : []), 'flag'],
            labelled.map((l) => [
              accountCell(l.flag.accountId, shown),
              l.flag.reviewQueue,
              html`<span class="tag sev-${l.flag.severity}">${l.flag.severity}</span>`,
              html`${num(l.flag.score)} <span class="muted">/ ${num(l.flag.reviewThreshold)}</span>`,
              html`${l.flag.signals.map((s) => html`<code>${s.id}</code> `)}`,
              ...(withLabels ? [html`<span class="tag label-${l.label}">${l.label}</span>`] : []),
              html`<code class="id">${l.flag.flagId}</code> rev ${l.flag.revision}`,
            ]),
            'flags',
          )
        : html`<p>No account went to review.</p>`
    }
    ${rejectedTable(r)} ${timelinesHeading(shown, flagged.size)}
    ${accounts.map((a) =>
      timelineSection({
        accountId: a,
        events: events.get(a) ?? [],
        flags: r.flags.filter((f) => f.accountId === a).map((flag) => ({ flag })),
        outcomes: r.outcomes.filter((o) => o.accountId === a),
        summary: html`${labelled
          .filter((l) => l.flag.accountId === a)
          .map(
            (l) =>
              html`<span class="tag">${l.flag.reviewQueue}</span
                ><span class="tag sev-${l.flag.severity}">${l.flag.severity}</span>score
                ${num(l.flag.score)}${withLabels ? html` <span class="tag label-${l.label}">${l.label}</span>` : ''} `,
          )}`,
      }),
    )}`;
  return page({
    title: 'fairflag replay',
    subtitle: `${input.source}, config ${r.configVersion}`,
    body,
    charts,
    ...(input.generatedAt !== undefined && { generatedAt: input.generatedAt }),
  });
}
