// The HTML reports' pure parts (src/report/): escaping, the JSON data block, score bins, and the
// timeline of an account whose strings are hostile, in memory. The browser test
// (test/integration/reports.test.ts) opens real reports made by the CLI.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REVIEW, type ReviewFlag } from '../../src/domain/flags.js';
import { binIndex, binsAround, lineChart } from '../../src/report/charts.js';
import { escapeHtml, html, page, scriptJson, timelineId } from '../../src/report/html.js';
import {
  MAX_TIMELINES,
  accountCell,
  timelined,
  timelineSection,
  timelinesHeading,
} from '../../src/report/timeline.js';
import { T0 } from '../support/snapshot.js';

const HOSTILE = '<img src=x onerror=alert(1)>';

function flagOf(accountId: string): ReviewFlag {
  return {
    flagId: 'ff-1',
    revision: 1,
    accountId,
    reviewQueue: 'identity',
    action: REVIEW,
    severity: 'medium',
    score: 2.5,
    reviewThreshold: 2,
    createdAt: T0,
    updatedAt: T0,
    triggeringEventId: 'ev-1',
    signals: [
      {
        id: 'ip.shared_by_accounts',
        family: 'ip',
        observed: 5,
        threshold: 4,
        window: '7d',
        weight: 1,
        strength: 1.25,
        contribution: 1.25,
        summary: `accounts on ${HOSTILE}`,
        evidenceEventIds: ['ev-1'],
        observedAt: T0,
      },
    ],
    mitigations: [],
    notApplicableMitigations: [],
    historyUnknown: true,
    notice: { category: 'x', text: 'x', howToResolve: 'x' },
    configVersion: 'cfg-1',
    processorVersion: 'fairflag/test',
  };
}

describe('report html', () => {
  it('escapes every interpolated string and keeps markup built with html', () => {
    const cell = html`<td title="${HOSTILE}">${HOSTILE}</td>`;
    expect(cell.text).toBe(
      '<td title="&lt;img src=x onerror=alert(1)&gt;">&lt;img src=x onerror=alert(1)&gt;</td>',
    );
    const row = html`<tr>
      ${cell}${[HOSTILE, null, undefined, false, 3]}
    </tr>`.text;
    expect(row.replace(/\s+</g, '<')).toBe(`<tr>${cell.text}&lt;img src=x onerror=alert(1)&gt;3</tr>`);
    expect(escapeHtml(`"'&`)).toBe('&quot;&#39;&amp;');
  });

  it('a hostile account id in a timeline renders as text, never as an element', () => {
    const out = timelineSection({
      accountId: HOSTILE,
      events: [
        {
          family: 'login',
          record: { eventId: 'ev-1', accountId: HOSTILE, occurredAt: T0, outcome: 'SUCCESS', ip: HOSTILE },
        },
      ],
      flags: [{ flag: flagOf(HOSTILE) }],
      outcomes: [
        {
          outcomeId: 'o1',
          flagId: 'ff-1',
          accountId: HOSTILE,
          outcome: 'CLEARED',
          noteCategory: `</script>${HOSTILE}`,
          decidedAt: T0 + 1,
        },
      ],
    }).text;
    expect(out).not.toContain('<img');
    expect(out).not.toContain('</script>');
    expect(out).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(out).toContain(`id="${timelineId(HOSTILE)}"`);
    expect(timelineId(HOSTILE)).toMatch(/^timeline-[0-9a-f]{16}$/);
    // the evidence event is marked as such
    expect(out).toMatch(/<tr class="kind-event evidence">/);
  });

  it('the JSON data block cannot close its script element, and parses back to the same data', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (v, s) => {
        const data = { v, s: `${s}</script><!--${HOSTILE}\u2028` };
        const text = scriptJson(data);
        expect(text).not.toMatch(/[<>\u2028\u2029]/);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(data)));
      }),
    );
  });

  it('the page inlines the chart library and has nothing to fetch', () => {
    const text = page({ title: HOSTILE, subtitle: HOSTILE, body: html``, charts: [], generatedAt: T0 });
    expect(text).toContain('<title>&lt;img src=x onerror=alert(1)&gt;</title>');
    expect(text).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    expect(text).not.toMatch(/sourceMappingURL/);
    expect(text.length).toBeGreaterThan(150_000); // Chart.js itself is in the file
  });

  it('score bins put the threshold on a bin edge and every score in a bin', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1000, noNaN: true }), { maxLength: 50 }),
        fc.double({ min: 0.01, max: 50, noNaN: true }),
        (scores, threshold) => {
          const b = binsAround(scores, threshold);
          expect(b.from.length).toBeLessThanOrEqual(40);
          expect(Number.isInteger(b.thresholdEdge)).toBe(true);
          expect(b.thresholdEdge * b.width).toBeCloseTo(threshold, 9);
          for (const s of scores) {
            const i = binIndex(b, s);
            const last = i === b.from.length - 1;
            expect(b.from[i]! <= s + 1e-9 && (last || s < b.from[i]! + b.width + 1e-9)).toBe(true);
          }
        },
      ),
    );
    expect(binsAround([100], 2).labels.at(-1)).toBe('≥ 19.5');
    expect(() => binsAround([1], 0)).toThrow(/threshold must be positive, got 0/);
  });

  it('lineChart refuses a series that does not match its x values', () => {
    expect(() =>
      lineChart({
        id: 'sweep',
        title: 't',
        x: { title: 'x', values: [1, 2, 3] },
        series: [{ name: 'flags', values: [1, 2] }],
        y: { title: 'flags' },
      }),
    ).toThrow('lineChart sweep: series flags has 2 values for 3 x values');
  });

  it('gives timelines to the first accounts of a table only, up to the cap', () => {
    const ids = Array.from({ length: MAX_TIMELINES + 100 }, (_, i) => `acct-${i}`);
    const shown = timelined([...ids, 'acct-0']);
    expect(shown.size).toBe(MAX_TIMELINES);
    expect(shown.has('acct-0') && shown.has(`acct-${MAX_TIMELINES - 1}`)).toBe(true);
    expect(shown.has(`acct-${MAX_TIMELINES}`)).toBe(false);
    expect(accountCell(`acct-${MAX_TIMELINES}`, shown).text).toBe(`<code>acct-${MAX_TIMELINES}</code>`);
    expect(accountCell('acct-0', shown).text).toContain(`href="#${timelineId('acct-0')}"`);
    expect(timelinesHeading(shown, ids.length).text).toContain('100 more are listed without one');
  });
});
