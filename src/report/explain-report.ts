// The explain report: one account as the feature store holds it. Its signals against their
// thresholds and each queue's score built from the signals' contributions (charts), then a
// timeline of what it remembers (creation, identity, observations with their evidence, flags,
// reviewers' cleared patterns, caps reached), the feature values of its windows, the mitigations
// and every signal's status.
import { describePattern, HISTORY_UNKNOWN, parsePattern } from '../domain/mitigations.js';
import type { Explanation } from '../tools/explain.js';
import { chartFigure, type ChartSpec } from './charts.js';
import { html, num, page, table, time, timelineId, type SafeHtml } from './html.js';

export interface ExplainReportInput {
  explanation: Explanation;
  generatedAt?: number;
}

/** Each signal's last observation over its threshold (1 = at the threshold), fired or not. */
export function thresholdChart(e: Explanation): ChartSpec | undefined {
  const measured = e.signals.filter(
    (s) =>
      (s.status === 'fired' || s.status === 'below') &&
      s.observed !== undefined &&
      s.threshold !== undefined &&
      s.threshold > 0 &&
      Number.isFinite(s.observed / s.threshold),
  );
  if (!measured.length) return undefined;
  const ratio = (s: (typeof measured)[number]) => Math.round((s.observed! / s.threshold!) * 100) / 100;
  return {
    id: 'thresholds',
    kind: 'bar',
    title: 'Signals against their thresholds (observed / threshold)',
    labels: measured.map((s) => s.id),
    series: [
      {
        name: 'fired',
        values: measured.map((s) => (s.status === 'fired' ? ratio(s) : null)),
        colour: '#D55E00',
      },
      {
        name: 'below',
        values: measured.map((s) => (s.status === 'below' ? ratio(s) : null)),
        colour: '#56B4E9',
      },
    ],
    x: { title: 'signal' },
    y: { title: 'observed / threshold', atLeast: 1.5 },
    horizontal: true,
    stacked: true,
    marker: { at: 1, label: 'threshold' },
    tall: measured.length > 8,
  };
}

/** Each queue's score as the stacked contributions of its signals, with the review threshold. */
export function scoreChart(e: Explanation): ChartSpec | undefined {
  if (!e.decisions.length) return undefined;
  const queues = e.decisions.map((d) => d.queue);
  const signals = [...new Set(e.decisions.flatMap((d) => d.signals.map((s) => s.observation.signalId)))];
  const thresholds = new Set(e.decisions.map((d) => d.threshold));
  return {
    id: 'score',
    kind: 'bar',
    title: 'Score per queue: contributions after mitigations',
    labels: queues,
    series: signals.map((id) => ({
      name: id,
      values: e.decisions.map((d) => {
        const s = d.signals.find((x) => x.observation.signalId === id);
        return s ? Math.round(s.contribution * 1000) / 1000 : null;
      }),
    })),
    x: { title: 'queue' },
    y: { title: 'score', atLeast: Math.max(...thresholds) * 1.25 },
    horizontal: true,
    stacked: true,
    // one line when the queues share a threshold (the usual case); the table has each one
    ...(thresholds.size === 1 && {
      marker: { at: [...thresholds][0]!, label: `review at ${num([...thresholds][0])}` },
    }),
  };
}

interface Row {
  at: number;
  kind: string;
  what: SafeHtml | string;
  details: SafeHtml | string;
}

function timelineRows(e: Explanation): Row[] {
  const rows: Row[] = [];
  const c = e.context;
  if (c.createdAt !== undefined)
    rows.push({ at: c.createdAt, kind: 'event', what: 'account created', details: c.accountType ?? '' });
  if (c.identityChangedAt !== undefined)
    rows.push({
      at: c.identityChangedAt,
      kind: 'event',
      what: c.identityVerified ? 'identity verified' : 'identity verification failed',
      details: '',
    });
  for (const s of e.signals)
    if (s.status === 'fired' && s.observedAt !== undefined)
      rows.push({
        at: s.observedAt,
        kind: 'signal',
        what: html`signal <code>${s.id}</code>${s.weak ? html` <span class="tag">weak</span>` : ''}`,
        details: html`${num(s.observed)} vs ${num(s.threshold)} (${s.window ?? ''}). ${s.summary}
          <div class="muted">
            evidence: ${(s.evidenceEventIds ?? []).map((id, i) => html`${i ? ', ' : ''}<code>${id}</code>`)}
          </div>`,
      });
  for (const f of e.openFlags) {
    rows.push({
      at: f.createdAt,
      kind: 'flag',
      what: 'flag opened',
      details: html`<code>${f.flagId}</code>`,
    });
    rows.push({
      at: f.updatedAt,
      kind: 'flag',
      what: html`open flag, rev ${f.revision}`,
      details: html`<span class="tag sev-${f.severity}">${f.severity}</span> score ${num(f.score)}; signals
        ${f.signals.map((s) => s.signalId).join(', ')}
        <div class="muted"><code>${f.flagId}</code></div>`,
    });
  }
  for (const p of e.clearedPatterns)
    rows.push({
      at: p.until,
      kind: 'outcome',
      what: 'cleared pattern: cooldown ends',
      details: html`a reviewer cleared ${describePattern(parsePattern(p.pattern))}; not raised again before
      this time`,
    });
  for (const x of e.capsReached) rows.push({ at: x.at, kind: 'cap', what: 'cap reached', details: x.what });
  rows.push({
    at: e.asOf,
    kind: 'asof',
    what: 'latest event (as of)',
    details: 'windows are measured from here',
  });
  return rows.sort((a, b) => a.at - b.at);
}

export function explainReport(input: ExplainReportInput): string {
  const e = input.explanation;
  const generated = input.generatedAt !== undefined ? { generatedAt: input.generatedAt } : {};
  if (!e.known)
    return page({
      title: 'fairflag explain',
      subtitle: `account ${e.accountId}`,
      body: html`<p>
        Nothing remembered about <code>${e.accountId}</code>: no event of it within the retention windows.
      </p>`,
      charts: [],
      ...generated,
    });
  const charts = [thresholdChart(e), scoreChart(e)].filter((c): c is ChartSpec => !!c);
  const c = e.context;
  const body = html` <ul class="summary">
      <li><b>${time(e.asOf)}</b>as of (its latest event)</li>
      ${e.decisions.map((d) => html`<li><b>${num(d.score)} / ${num(d.threshold)}</b>${d.queue}: ${d.severity ? `review, ${d.severity}` : 'no review'}</li>`)}
      <li><b>${e.openFlags.length}</b>open flag(s)</li>
      <li><b>${e.clearedPatterns.length}</b>cleared pattern(s)</li>
    </ul>
    <p class="note">From the feature store as of the last batch the account's owner wrote. Read-only.</p>
    ${charts.length ? html`<div class="charts">${charts.map((x) => chartFigure(x))}</div>` : html`<p>No signal measured: nothing to chart.</p>`}
    <section class="timeline" id="${timelineId(e.accountId)}" data-account="${e.accountId}">
      <h2>Timeline of <code>${e.accountId}</code></h2>
      <table class="timeline-rows">
        <thead>
          <tr>
            <th>time (UTC)</th>
            <th>what</th>
            <th>details</th>
          </tr>
        </thead>
        <tbody>
          ${timelineRows(e).map(
            (r) =>
              html`<tr class="kind-${r.kind}">
                <td class="mono">${time(r.at)}</td>
                <td>${r.what}</td>
                <td>${r.details}</td>
              </tr> `,
          )}
        </tbody>
      </table>
    </section>
    <h2>Score per queue</h2>
    ${
      e.decisions.length
        ? table(
            [
              'queue',
              'score',
              'review at',
              'decision',
              'signals (contribution)',
              'mitigations',
              'corroboration',
            ],
            e.decisions.map((d) => [
              d.queue,
              num(d.score),
              num(d.threshold),
              d.severity
                ? html`<span class="tag sev-${d.severity}">review, ${d.severity}</span>`
                : d.clearedByReview
                  ? 'cleared pattern: not raised'
                  : 'no review',
              html`${d.signals.map((s, i) => html`${i ? html`<br />` : ''}<code>${s.observation.signalId}</code> ${num(s.contribution)}`)}`,
              html`${d.mitigations.map((m, i) => html`${i ? html`<br />` : ''}${m.id} x${m.factor}`)}${d.notApplicable.map((m) => html`<br /><span class="muted">${m.id}: not applicable</span>`)}`,
              d.corroboration,
            ]),
            'decisions',
          )
        : html`<p>No signal remembered: score 0.</p>`
    }
    <h2>Mitigations</h2>
    ${e.historyUnknown ? html`<p><b>${HISTORY_UNKNOWN}</b></p>` : ''}
    ${
      e.mitigations.length
        ? table(
            ['mitigation', 'effect', 'dampens', 'what the account has'],
            e.mitigations.map((m) => [m.id, m.effect, m.appliesTo.join(', '), m.fact]),
          )
        : html`<p>None.</p>`
    }
    <p class="muted">
      context: created ${c.createdAt !== undefined ? time(c.createdAt) : 'unknown'}, identity
      ${c.identityVerified === undefined ? 'unknown' : c.identityVerified ? 'verified' : 'not verified'},
      ${c.lifetimeCompletedContracts ?? '?'} completed contracts, ${c.lifetimePaidHours ?? '?'} paid hours
    </p>
    <h2>Features by window (events in its windows)</h2>
    ${table(
      ['feature', 'window', 'value', 'sample'],
      e.features.map((f) => [f.feature, f.window, f.value, (f.sample ?? []).join(', ')]),
    )}
    <h2>Every signal</h2>
    ${table(
      ['signal', 'status', 'observed vs threshold', 'summary', 'basis'],
      e.signals.map((s) => [
        html`<code>${s.id}</code>${s.weak ? html` <span class="tag">weak</span>` : ''}`,
        s.status,
        s.observed !== undefined ? `${num(s.observed)} vs ${num(s.threshold)} (${s.window ?? ''})` : '',
        s.summary,
        html`${s.basis}${s.evidenceEventIds?.length ? html`<div class="muted">evidence: ${s.evidenceEventIds.join(', ')}</div>` : ''}`,
      ]),
      'signals',
    )}`;
  return page({
    title: 'fairflag explain',
    subtitle: `account ${e.accountId}${e.historyUnknown ? ' (history unknown to fairflag)' : ''}`,
    body,
    charts,
    ...generated,
  });
}
