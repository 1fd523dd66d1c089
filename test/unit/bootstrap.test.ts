import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contextEvents, readSnapshot, snapshotLine } from '../../src/tools/bootstrap.js';

const DAY = 86_400_000;
const T = Date.UTC(2026, 10, 1);
const line = {
  accountId: 'acct-1',
  createdAt: '2024-11-01T00:00:00Z',
  accountType: 'FREELANCER',
  identityVerifiedAt: T - 700 * DAY,
  stats: { at: T - DAY, completedContracts: 12, paidHours: 2600, earnings: 98000 },
  openContracts: [
    {
      contractId: 'c-1',
      clientAccountId: 'client-1',
      freelancerAccountId: 'acct-1',
      startedAt: T - 425 * DAY,
      lastPaidAt: T - 3 * DAY,
    },
  ],
};

describe('bootstrap snapshot', () => {
  it("turns an account's record into the context events it stands for, in time order, with ids from the facts", () => {
    const events = contextEvents(snapshotLine.parse(line));
    expect(events.map((e) => [e.family, e.event.eventId, e.event.occurredAt])).toEqual(
      [
        ['account', 'bootstrap:acct-1:created', Date.parse('2024-11-01T00:00:00Z')],
        ['contract', 'bootstrap:acct-1:contract:c-1:started', T - 425 * DAY],
        ['account', 'bootstrap:acct-1:identity-verified', T - 700 * DAY],
        ['contract', `bootstrap:acct-1:contract:c-1:paid:${T - 3 * DAY}`, T - 3 * DAY],
        ['account', `bootstrap:acct-1:stats:${T - DAY}`, T - DAY],
      ].sort((a, b) => (a[2] as number) - (b[2] as number)),
    );
    expect(events.find((e) => e.event.eventId.endsWith('stats:' + (T - DAY)))!.event).toMatchObject({
      action: 'STATS_UPDATED',
      lifetimeCompletedContracts: 12,
      lifetimePaidHours: 2600,
    });
    // a contract's events are keyed by this account, naming both sides
    expect(events.filter((e) => e.family === 'contract').every((e) => e.event.accountId === 'acct-1')).toBe(
      true,
    );
  });

  it('gives the same events for the same record, so a second run (or a resumed one) is a replay', () => {
    fc.assert(
      fc.property(
        fc.record({
          accountId: fc.stringMatching(/^[a-z0-9-]{1,20}$/),
          createdAt: fc.integer({ min: 946_684_800_000, max: T }),
          identityVerifiedAt: fc.option(fc.integer({ min: 946_684_800_000, max: T })),
        }),
        (r) => {
          const a = contextEvents(snapshotLine.parse(r));
          expect(contextEvents(snapshotLine.parse(structuredClone(r)))).toEqual(a);
          expect(new Set(a.map((e) => e.event.eventId)).size).toBe(a.length);
        },
      ),
    );
  });

  it('reports each bad line with its number and every problem, and reads on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fairflag-bootstrap-'));
    const file = join(dir, 'snapshot.ndjson');
    writeFileSync(
      file,
      [
        JSON.stringify(line),
        '{not json',
        JSON.stringify({ ...line, createdAt: 'yesterday', openContracts: [{ contractId: 'c' }] }),
        '',
        JSON.stringify({ ...line, accountId: 'acct-2', plan: 'gold' }),
        JSON.stringify({ ...line, accountId: 'acct-3' }),
      ].join('\n'),
    );
    const items = [];
    for await (const i of readSnapshot(file, 1024 * 1024)) items.push(i);
    expect(items.map((i) => ('error' in i ? [i.line, i.error] : [i.line, i.accountId]))).toEqual([
      [1, 'acct-1'],
      [2, expect.stringMatching(/^not JSON: /)],
      [
        3,
        'createdAt: expected epoch milliseconds or an ISO-8601 UTC time; openContracts.0.clientAccountId: expected an id; openContracts.0.freelancerAccountId: expected an id; openContracts.0.startedAt: expected epoch milliseconds or an ISO-8601 UTC time',
      ],
      [5, expect.stringMatching(/^line: Unrecognized key: "plan"/)],
      [6, 'acct-3'],
    ]);
  });
});
