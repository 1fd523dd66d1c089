// The scores behind a replay report's histogram, in memory: the engine lists every scoring it
// does, flagged or not (BatchResult.scored), and the histogram counts each account once per
// queue, by whether it went to review.
import { beforeAll, describe, expect, it } from 'vitest';
import { GeoIp } from '../../src/enrich/geoip.js';
import { scoreCharts } from '../../src/report/replay-report.js';
import type { AccountScore, ReplayResult } from '../../src/tools/replay.js';
import { MemoryPipeline } from '../support/engine.js';
import { shippedConfig } from '../support/snapshot.js';
import type { ActivityEvent } from '../../src/domain/events.js';
import { DAY } from '../../src/scenarios/reference.js';
import { AWAY, MELBOURNE, enriched, takeoverAttempt } from '../support/stories.js';

const T0 = Date.UTC(2026, 5, 1, 8);
let geo: GeoIp;
beforeAll(async () => {
  geo = await GeoIp.open(shippedConfig().config.maxmind);
});

describe('scores for the report', () => {
  it('the engine lists every scoring: a new country and device alone are scored but not reviewed, a takeover is reviewed at its flag score', async () => {
    const p = new MemoryPipeline();
    // weak signals only (a new country, a new device): scored, never enough on their own
    const visit = (n: number, at: number, ip: string): ActivityEvent => ({
      family: 'login',
      event: {
        eventId: `trip-${n}`,
        accountId: 'acct-trip',
        occurredAt: at,
        outcome: 'SUCCESS',
        ip,
        deviceId: `dev-${n}`,
        sessionId: null,
      },
    });
    await p.feed(enriched([visit(1, T0, MELBOURNE), visit(2, T0 + DAY, AWAY.manila)], geo, T0 + 2 * DAY));
    await p.feed(enriched(takeoverAttempt('acct-taken', T0), geo, T0 + 2 * DAY));
    const scored = p.results.flatMap((r) => r.scored);
    const last = (acct: string) => scored.filter((s) => s.accountId === acct).at(-1)?.decision;
    const trip = last('acct-trip');
    expect(trip?.score).toBeGreaterThan(0);
    expect(trip?.severity).toBeUndefined();
    const flag = p.flags.filter((f) => f.accountId === 'acct-taken').at(-1)!;
    const taken = scored.filter((s) => s.accountId === 'acct-taken' && s.decision.queue === flag.reviewQueue);
    expect(taken.map((s) => s.decision.score)).toContain(flag.score);
    // every emission comes from a scoring listed in the same batch
    for (const r of p.results)
      for (const e of r.emissions) expect(r.scored.map((s) => s.decision)).toContain(e.decision);
  });

  it('the histogram counts each account once in its bin, stacked by whether it went to review', () => {
    const score = (accountId: string, s: number, severity?: string): [string, AccountScore] => [
      `${accountId}|identity`,
      { accountId, queue: 'identity', score: s, threshold: 2, ...(severity && { severity }) },
    ];
    const scores = new Map([score('a', 0.3), score('b', 2.1), score('c', 2.2, 'low'), score('d', 5, 'high')]);
    const [chart] = scoreCharts({ scores } as ReplayResult);
    expect(chart!.marker).toEqual({ at: 4, label: 'review at 2' });
    const [not, reviewed] = chart!.series;
    const bin = (label: string) => chart!.labels.indexOf(label);
    expect(not!.values[bin('0–0.5')]).toBe(1);
    // at the threshold without review (not corroborated): counted as not reviewed
    expect(not!.values[bin('2–2.5')]).toBe(1);
    expect(reviewed!.values[bin('2–2.5')]).toBe(1);
    expect(reviewed!.values[bin('5–5.5')]).toBe(1);
    const total = (v: (number | null)[]) => v.reduce<number>((a, b) => a + (b ?? 0), 0);
    expect(total(not!.values) + total(reviewed!.values)).toBe(4);
  });
});
