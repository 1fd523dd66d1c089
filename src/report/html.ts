// The page shell of an HTML report: one self-contained file (styles, the chart library and the
// data inlined), so an analyst can open it from disk, mail it or attach it to a case without any
// network access. Every string that comes from events or config goes through `html`, which
// escapes whatever it interpolates unless it is already markup built here.
import { createHash } from 'node:crypto';
import { chartLibrary, chartScript, type ChartSpec } from './charts.js';

/** Markup built by this module's helpers: interpolated as is. Anything else is escaped. */
export class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe inside an element and inside a quoted attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Interpolated = SafeHtml | string | number | boolean | null | undefined | readonly Interpolated[];

function render(v: Interpolated): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.text;
  if (Array.isArray(v)) return (v as readonly Interpolated[]).map(render).join('');
  return escapeHtml(String(v as string | number | boolean));
}

/**
 * A template tag for markup: `html\`<td>${accountId}</td>\`` escapes the account id; arrays are
 * joined; null, undefined and false render as nothing; a SafeHtml (another `html` result) is kept.
 */
export function html(strings: TemplateStringsArray, ...values: Interpolated[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new SafeHtml(out);
}

/**
 * JSON for a `<script type="application/json">` block: `<`, `>`, `&` and the two line separators
 * are written as \u escapes, so no string in it can close the script element or start a comment.
 */
export function scriptJson(data: unknown): string {
  return JSON.stringify(data).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A stable element id for an account's timeline, whatever characters the account id holds. */
export function timelineId(accountId: string): string {
  return `timeline-${createHash('sha256').update(accountId).digest('hex').slice(0, 16)}`;
}

/** A link to an account's timeline section in the same page. */
export function accountLink(accountId: string): SafeHtml {
  return html`<a class="account" href="#${timelineId(accountId)}">${accountId}</a>`;
}

export const time = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

export const num = (x: number | null | undefined, digits = 2): string =>
  x === null || x === undefined ? '–' : String(Math.round(x * 10 ** digits) / 10 ** digits);

export const percent = (x: number | null | undefined): string =>
  x === null || x === undefined ? '–' : `${Math.round(x * 100)}%`;

/** A table with a header row; cells are escaped unless they are SafeHtml. */
export function table(headers: string[], rows: Interpolated[][], className = ''): SafeHtml {
  return html`<table class="${className}">
    <thead>
      <tr>
        ${headers.map((h) => html`<th>${h}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (r) =>
          html`<tr>
            ${r.map((c) => html`<td>${c}</td>`)}
          </tr> `,
      )}
    </tbody>
  </table>`;
}

export interface Page {
  title: string;
  /** One line under the title: what was replayed, under which config. */
  subtitle: string;
  body: SafeHtml;
  charts: ChartSpec[];
  /** When the report was made (a parameter, so tests can fix it). */
  generatedAt?: number;
}

const STYLE = `
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --accent: #d9480f; --bg: #fff; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: var(--bg); margin: 0 auto; padding: 24px 32px 64px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.subtitle, p.note, .muted { color: var(--muted); }
p.subtitle { margin: 0 0 16px; }
.summary { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; padding: 0; list-style: none; }
.summary li { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.summary b { display: block; font-size: 20px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 16px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; }
figure.chart .frame { position: relative; height: 260px; }
figure.chart.tall .frame { height: 420px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
td.num, th.num { text-align: right; }
td a.account, td code.id { white-space: nowrap; }
code, .mono, a.account { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
a { color: #1c5fb8; }
section.timeline { border-left: 3px solid var(--line); padding-left: 16px; margin: 24px 0; }
section.timeline:target { border-left-color: var(--accent); }
tr.evidence td { background: #fff4e6; }
tr.kind-flag td { background: #fde8e8; }
tr.kind-outcome td { background: #e6f4ea; }
tr.kind-signal td { background: #fff9db; }
.tag { display: inline-block; border-radius: 3px; padding: 0 5px; font-size: 12px; background: #e4e7eb; margin-right: 4px; }
.sev-high, .sev-critical { background: #ffc9c9; }
.sev-medium { background: #ffe8cc; }
.label-CONFIRMED { background: #ffc9c9; }
.label-CLEARED { background: #d3f9d8; }
.label-NEEDS_MORE_INFO { background: #fff3bf; }
footer { margin-top: 48px; color: var(--muted); font-size: 12px; }
`;

/**
 * The whole page: styles, the chart library and the page's own drawing script inlined, the
 * charts' data as JSON in a `<script type="application/json" id="fairflag-charts">` block.
 */
export function page(p: Page): string {
  const generated = time(p.generatedAt ?? Date.now());
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(p.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1 id="top">${escapeHtml(p.title)}</h1>
<p class="subtitle">${escapeHtml(p.subtitle)}</p>
${p.body.text}
<footer>fairflag report, generated ${escapeHtml(generated)} UTC. Every flag here is a request for human review, never a decision.</footer>
<script type="application/json" id="fairflag-charts">${scriptJson(p.charts)}</script>
<script>${chartLibrary()}</script>
<script>${chartScript()}</script>
</body>
</html>
`;
}
