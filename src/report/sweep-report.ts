// The sweep report: the flags and (with review outcomes) the precision and the confirmed accounts
// lost at each value of one setting, as a curve with today's value marked, and the same as a table.
import { sweepTable, type SweepResult } from '../tools/sweep.js';
import { chartFigure, lineChart, type ChartSpec } from './charts.js';
import { html, num, page, percent, table } from './html.js';

export interface SweepReportInput {
  result: SweepResult;
  source: string;
  generatedAt?: number;
}

export function sweepCurve(r: SweepResult): ChartSpec {
  const values = r.points.map((p) => p.value);
  return lineChart({
    id: 'sweep',
    title: `Flags${r.labelled ? ', confirmed lost and precision' : ''} by ${r.setting}`,
    x: { title: r.setting, values },
    series: [
      { name: 'flags', values: r.points.map((p) => p.flags) },
      ...(r.labelled
        ? [
            { name: 'confirmed lost', values: r.points.map((p) => p.labels?.confirmedLost.length ?? null) },
            {
              name: 'precision',
              values: r.points.map((p) => p.labels?.precision ?? null),
              axis: 'y2' as const,
            },
          ]
        : []),
    ],
    y: { title: 'flags' },
    ...(r.labelled && { y2: { title: 'precision', percent: true, max: 1 } }),
    ...(values.includes(r.current) && { marker: { at: r.current, label: `today (${num(r.current)})` } }),
  });
}

export function sweepReport(input: SweepReportInput): string {
  const r = input.result;
  const curve = sweepCurve(r);
  const { header, rows } = sweepTable(r, {
    valueHeader: r.setting,
    value: (p) => `${num(p.value)}${p.value === r.current ? ' (today)' : ''}`,
    precision: percent,
    lost: (accounts) => accounts.join(', ') || '–',
  });
  const body = html`<ul class="summary">
      <li><b>${r.points.length}</b>values tried</li>
      <li><b>${r.events}</b>records replayed each time</li>
      <li><b>${r.rejected}</b>not used</li>
      <li><b>${num(r.current)}</b>today's value</li>
    </ul>
    <div class="charts">${chartFigure(curve)}</div>
    ${
      r.labelled
        ? html`<p class="note">
            Precision = confirmed / (confirmed + cleared) among the flags each value raises; confirmed lost =
            accounts reviewers confirmed that today's configuration reviews and this value would not.
          </p>`
        : html`<p class="note">
            The input held no review outcomes, so there is no precision: add lines of family
            <code>review_outcome</code> (or use --from-kafka) for a labelled sweep.
          </p>`
    }
    ${table(header, rows)}`;
  return page({
    title: `fairflag sweep of ${r.setting}`,
    subtitle: `${input.source}: ${r.points.length} values, each replayed through production's features and scoring`,
    body,
    charts: [curve],
    ...(input.generatedAt !== undefined && { generatedAt: input.generatedAt }),
  });
}
