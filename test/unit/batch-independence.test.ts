// Batch independence, in memory: however a stream is cut into batches, however often events are
// delivered again, the engine gives the same features, the same flag messages and the same dead
// letters as feeding the events one at a time; and reordering within the allowed lateness gives
// the same features. The same properties run against a real Redis in test/integration.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EnrichedEvent } from '../../src/domain/events.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { ingest } from '../../src/ingest/ingest.js';
import { DAY, HOUR, accountTakeover } from '../../src/scenarios/reference.js';
import { login as scenarioLogin } from '../../src/scenarios/reference.js';
import { MemoryPipeline } from '../support/engine.js';
import {
  cuts,
  duplicated,
  hostileStream,
  observable,
  reorderedWithinLateness,
  stream,
  withConflicts,
} from '../support/streams.js';
import { shippedConfig, shippedPolicy } from '../support/snapshot.js';

const SEED = Number(process.env['FAIRFLAG_PROPERTY_SEED'] ?? Date.now() % 1_000_000);
const RUNS = { numRuns: 60, seed: SEED };
const lateness = shippedPolicy().layout.allowedLatenessMs;

async function run(events: EnrichedEvent[], batches: number[]) {
  const p = new MemoryPipeline();
  let i = 0;
  for (const size of batches) {
    await p.batch(events.slice(i, i + size));
    i += size;
  }
  if (i < events.length) await p.batch(events.slice(i));
  return observable(p);
}

describe('batch independence (in memory)', () => {
  it(`any split into batches gives the features, flags and dead letters of one at a time (seed ${SEED})`, async () => {
    let flagged = 0;
    await fc.assert(
      fc.asyncProperty(
        stream.chain((events) => fc.tuple(fc.constant(events), cuts(events.length))),
        async ([events, batches]) => {
          const one = await run(
            events,
            events.map(() => 1),
          );
          const split = await run(events, batches);
          if (one.flags.length) flagged++;
          expect(split).toEqual(one);
        },
      ),
      RUNS,
    );
    // the generator reaches the interesting part: streams that raise flags
    expect(flagged).toBeGreaterThan(5);
  });

  it(`events delivered again (within a batch or later) change nothing and emit no second flag (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        stream.chain((events) => fc.tuple(fc.constant(events), duplicated(events), cuts(events.length * 2))),
        async ([events, withDuplicates, batches]) => {
          const once = await run(
            events,
            events.map(() => 1),
          );
          const again = await run(withDuplicates, batches);
          expect(again.features).toEqual(once.features);
          expect(again.flags).toEqual(once.flags);
          expect(again.refused).toEqual([]);
        },
      ),
      RUNS,
    );
  });

  it(`the same id with other content is refused as a conflicting duplicate, however batched (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        stream
          .chain((events) => withConflicts(events))
          .chain((events) => fc.tuple(fc.constant(events), cuts(events.length))),
        async ([events, batches]) => {
          const one = await run(
            events,
            events.map(() => 1),
          );
          const split = await run(events, batches);
          expect(split).toEqual(one);
          expect(one.refused.filter((r) => r.startsWith('conflict')).length).toBeGreaterThan(0);
        },
      ),
      RUNS,
    );
  });

  it(`reordering within the allowed lateness gives the same features (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        stream.chain((events) => fc.tuple(fc.constant(events), reorderedWithinLateness(events, lateness))),
        async ([events, reordered]) => {
          const inOrder = await run(events, [events.length]);
          const shuffled = await run(reordered, [reordered.length]);
          expect(shuffled.features).toEqual(inOrder.features);
        },
      ),
      RUNS,
    );
  });

  it(`a hostile mix never throws out of the engine: every input applied, replayed or refused (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(hostileStream, async (events) => {
        const p = new MemoryPipeline();
        const r = await p.batch(events);
        expect(r.outcomes).toHaveLength(events.length);
      }),
      { numRuns: 30, seed: SEED },
    );
  });
});

describe('the takeover that a backlog used to lose', () => {
  it('flags the takeover whether its events and the owner login 30 hours later arrive one by one, as replay batches or as one backlog', async () => {
    const { config } = shippedConfig();
    const geo = await GeoIp.open(config.maxmind);
    const t0 = Date.UTC(2026, 5, 1, 12);
    const s = accountTakeover(t0, 'backlog');
    const owner = scenarioLogin(
      { next: () => 'evt-owner-back' },
      s.accountId,
      t0 + 30 * HOUR,
      '216.160.83.56',
      {
        deviceId: 'dev-b-phone',
        sessionId: 'owner-back',
      },
    );
    const events = [...s.phases.flat(), owner]
      .sort((a, b) => a.event.occurredAt - b.event.occurredAt)
      .map((e) => {
        const r = ingest(e.family, e.event, config.validation, geo, t0 + 2 * DAY);
        if (!r.ok) throw new Error(r.detail);
        return r.event;
      });
    const results = [];
    for (const batches of [events.map(() => 1), [500], [7, 7, 7, 7, 7]]) {
      const o = await run(events, batches);
      const mine = o.flags.filter((f) => (f as { accountId: string }).accountId === s.accountId);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ severity: 'high', reviewQueue: 'account_security' });
      results.push(o);
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });
});
