// Charts of an HTML report, drawn in the page by Chart.js (inlined from node_modules, so the file
// needs no network). A report describes each chart as a ChartSpec (plain data, written into the
// page as JSON); the small script below turns the specs into Chart.js charts. After drawing, each
// chart's <figure> gets data-points (the data points drawn) and data-rendered, which the browser
// test reads to know that every chart was drawn with its data.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { html, type SafeHtml } from './html.js';

export interface ChartSeries {
  name: string;
  /** One value per label (null: no value there, e.g. a precision with nothing reviewed). */
  values: (number | null)[];
  /** A CSS colour; by default the next colour of a colour-blind-safe palette. */
  colour?: string;
  /** Line charts: the left (y) or right (y2) axis. */
  axis?: 'y' | 'y2';
}

export interface ChartAxis {
  title: string;
  max?: number;
  /** The axis reaches at least this far (room for a marker at the edge of the data). */
  atLeast?: number;
  /** Values are shares (0..1), shown as percentages. */
  percent?: boolean;
}

export interface ChartSpec {
  /** Unique in the page; also names the figure (data-chart). */
  id: string;
  kind: 'bar' | 'line';
  title: string;
  /** Bars: the category of each value. Lines: the numeric x of each value. */
  labels: (string | number)[];
  series: ChartSeries[];
  x: { title: string };
  y: ChartAxis;
  y2?: ChartAxis;
  /** Bars along the y axis (long category names such as signal ids). */
  horizontal?: boolean;
  stacked?: boolean;
  /**
   * A vertical line with a label: for bars, at a category edge (0 = the left edge of the first
   * bar, n = the right edge of the n-th); for lines, at an x value.
   */
  marker?: { at: number; label: string };
  /** A taller frame (a horizontal bar per signal). */
  tall?: boolean;
  /** Bars side by side with no gap (a histogram's bins). */
  gapless?: boolean;
}

/** The figure a chart is drawn into; put it in the page body and its spec in Page.charts. */
export function chartFigure(spec: ChartSpec, note?: string): SafeHtml {
  return html`<figure class="chart${spec.tall ? ' tall' : ''}" data-chart="${spec.id}">
    <figcaption>${spec.title}</figcaption>
    <div class="frame"><canvas role="img" aria-label="${spec.title}"></canvas></div>
    ${note ? html`<p class="note">${note}</p>` : ''}
  </figure>`;
}

/**
 * The generic line chart, for curves such as a sweep (x: the setting's value; y: flags; y2:
 * precision):
 *
 *   lineChart({
 *     id: 'sweep', title: 'Flags and precision by threshold',
 *     x: { title: 'signals.ip.shared_by_accounts.threshold', values: [3, 4, 5, 6] },
 *     series: [
 *       { name: 'flags', values: [12, 9, 4, 2] },
 *       { name: 'precision', values: [0.4, 0.5, null, 1], axis: 'y2' },
 *     ],
 *     y: { title: 'flags' },
 *     y2: { title: 'precision', percent: true, max: 1 },
 *     marker: { at: 5, label: 'current' },   // optional
 *   }): ChartSpec
 *
 * Every series has one value per x (null for none). Render with chartFigure(spec) in the body
 * and the spec in Page.charts.
 */
export function lineChart(args: {
  id: string;
  title: string;
  x: { title: string; values: number[] };
  series: ChartSeries[];
  y: ChartAxis;
  y2?: ChartAxis;
  marker?: { at: number; label: string };
}): ChartSpec {
  for (const s of args.series)
    if (s.values.length !== args.x.values.length)
      throw new Error(
        `lineChart ${args.id}: series ${s.name} has ${s.values.length} values for ${args.x.values.length} x values`,
      );
  return {
    id: args.id,
    kind: 'line',
    title: args.title,
    labels: args.x.values,
    series: args.series,
    x: { title: args.x.title },
    y: args.y,
    ...(args.y2 && { y2: args.y2 }),
    ...(args.marker && { marker: args.marker }),
  };
}

export interface Bins {
  /** "from–to" per bin. */
  labels: string[];
  /** Lower edge of each bin. */
  from: number[];
  width: number;
  /** The bin edge the threshold falls on (see ChartSpec.marker); the last bin may be open-ended. */
  thresholdEdge: number;
}

/**
 * Bins from 0 for a histogram of scores, a quarter of the threshold wide, so the threshold falls
 * exactly on a bin edge; at most `maxBins`, the last one open-ended ("≥ x") for the scores beyond.
 */
export function binsAround(values: readonly number[], threshold: number, maxBins = 40): Bins {
  if (!(threshold > 0)) throw new Error(`binsAround: threshold must be positive, got ${threshold}`);
  const top = Math.max(threshold, ...values.filter(Number.isFinite));
  const width = threshold / 4;
  const n = Math.min(maxBins, Math.floor(top / width) + 1);
  const from = Array.from({ length: n }, (_, i) => i * width);
  const fmt = (x: number) => String(Math.round(x * 100) / 100);
  const open = top >= n * width;
  return {
    labels: from.map((f, i) => (open && i === n - 1 ? `≥ ${fmt(f)}` : `${fmt(f)}–${fmt(f + width)}`)),
    from,
    width,
    thresholdEdge: 4,
  };
}

/** Which bin each value falls in (below 0 in the first, beyond the last bin in the last). */
export function binIndex(bins: Bins, value: number): number {
  return Math.min(bins.from.length - 1, Math.max(0, Math.floor(value / bins.width)));
}

let library: string | undefined;

/** Chart.js's minified UMD build, read from node_modules once. */
export function chartLibrary(): string {
  if (library === undefined) {
    // the package exports only its module builds; the browser build sits beside them in dist/
    const file = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
    library = readFileSync(file, 'utf8')
      // the map is not shipped in the page; a browser's developer tools would try to fetch it
      .replace(/\/\/# sourceMappingURL=\S+\s*$/, '')
      .replace(/<\/(script)/gi, '<\\/$1');
  }
  return library;
}

/** The page's drawing script (plain browser JavaScript, no build step). */
export function chartScript(): string {
  return DRAW;
}

const DRAW = String.raw`
(() => {
  'use strict';
  const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#7f7f7f'];
  const pct = (v) => (v === null || v === undefined ? '–' : Math.round(v * 100) + '%');
  const marker = {
    id: 'fairflagMarker',
    afterDatasetsDraw(chart, _args, opts) {
      if (!opts || typeof opts.at !== 'number') return;
      const scale = chart.scales.x;
      let px;
      if (scale.type === 'category') {
        const n = chart.data.labels.length;
        const first = scale.getPixelForValue(0);
        const step = n > 1 ? scale.getPixelForValue(1) - first : scale.width;
        px = first - step / 2 + opts.at * step;
      } else px = scale.getPixelForValue(opts.at);
      const { top, bottom } = chart.chartArea;
      const ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = '#d9480f';
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(px, top);
      ctx.lineTo(px, bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = '#d9480f';
      ctx.font = '600 12px system-ui, sans-serif';
      ctx.textAlign = px > (chart.chartArea.left + chart.chartArea.right) / 2 ? 'right' : 'left';
      ctx.fillText(opts.label, px + (ctx.textAlign === 'left' ? 6 : -6), top + 12);
      ctx.restore();
    },
  };
  const counted = {
    id: 'fairflagCount',
    afterRender(chart) {
      let points = 0;
      chart.data.datasets.forEach((ds, i) => {
        const meta = chart.getDatasetMeta(i);
        meta.data.forEach((el, j) => {
          const v = ds.data[j];
          const y = v !== null && typeof v === 'object' ? v.y : v;
          if (y !== null && y !== undefined && Number.isFinite(el.x) && Number.isFinite(el.y)) points++;
        });
      });
      const fig = chart.canvas.closest('figure');
      fig.dataset.points = String(points);
      fig.dataset.rendered = 'true';
    },
  };
  const axis = (a, position) => {
    const out = {
      position,
      beginAtZero: true,
      title: { display: true, text: a.title },
      ticks: a.percent ? { callback: (v) => pct(v) } : { precision: 0 },
    };
    if (typeof a.max === 'number') out.max = a.max;
    if (typeof a.atLeast === 'number') out.suggestedMax = a.atLeast;
    if (a.percent) out.ticks.precision = 2;
    return out;
  };
  const draw = (spec) => {
    const fig = document.querySelector('figure[data-chart="' + CSS.escape(spec.id) + '"]');
    if (!fig) throw new Error('no figure for chart ' + spec.id);
    const line = spec.kind === 'line';
    const datasets = spec.series.map((s, i) => {
      const colour = s.colour || PALETTE[i % PALETTE.length];
      return {
        label: s.name,
        data: line ? s.values.map((y, j) => ({ x: spec.labels[j], y })) : s.values,
        backgroundColor: line ? colour : colour + 'cc',
        borderColor: colour,
        borderWidth: line ? 2 : 1,
        pointRadius: line ? 3 : undefined,
        categoryPercentage: spec.gapless ? 1 : 0.8,
        barPercentage: spec.gapless ? 0.98 : 0.9,
        spanGaps: false,
        // a point on the edge of the plot (a precision of 100%) is drawn whole
        clip: line ? false : undefined,
        yAxisID: line && s.axis === 'y2' ? 'y2' : 'y',
        xAxisID: 'x',
      };
    });
    const valueAxis = spec.horizontal ? 'x' : 'y';
    const categoryAxis = spec.horizontal ? 'y' : 'x';
    const scales = {};
    scales[categoryAxis] = {
      type: line ? 'linear' : 'category',
      stacked: !!spec.stacked,
      title: { display: true, text: spec.x.title },
      ticks: { autoSkip: !spec.horizontal },
      grid: { display: line },
    };
    // a curve over a few settings: ticks at the values tried, not at round numbers between them
    if (line && spec.labels.length <= 20)
      scales[categoryAxis].afterBuildTicks = (scale) => {
        scale.ticks = spec.labels.map((value) => ({ value }));
      };
    scales[valueAxis] = { ...axis(spec.y, spec.horizontal ? 'bottom' : 'left'), stacked: !!spec.stacked };
    if (spec.y2) scales.y2 = { ...axis(spec.y2, 'right'), grid: { drawOnChartArea: false } };
    const percentAxis = (id) => (id === 'y2' ? spec.y2 && spec.y2.percent : spec.y.percent);
    new Chart(fig.querySelector('canvas'), {
      type: line ? 'line' : 'bar',
      data: { labels: line ? undefined : spec.labels, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        indexAxis: spec.horizontal ? 'y' : 'x',
        scales,
        interaction: { mode: 'nearest', intersect: false, axis: spec.horizontal ? 'y' : 'x' },
        plugins: {
          legend: { display: spec.series.length > 1 },
          fairflagMarker: spec.marker || {},
          tooltip: {
            callbacks: {
              label: (item) => {
                const v = spec.horizontal ? item.parsed.x : item.parsed.y;
                const shown = percentAxis(item.dataset.yAxisID) ? pct(v) : String(v);
                return item.dataset.label + ': ' + shown;
              },
            },
          },
        },
      },
      plugins: [marker, counted],
    });
  };
  const specs = JSON.parse(document.getElementById('fairflag-charts').textContent);
  for (const spec of specs) {
    try {
      draw(spec);
    } catch (err) {
      console.error('chart ' + spec.id + ': ' + err.message);
    }
  }
})();
`;
