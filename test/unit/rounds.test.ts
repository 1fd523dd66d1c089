// A round processes the batches of one partition that arrived together as one engine batch, then
// hands each batch its share of the result: its dead letters, produce requests and metrics come
// from that share. Every flag must reach exactly one batch (the one holding its triggering event),
// and outcomes must line up with each batch's own messages.
import { describe, expect, it } from 'vitest';
import type { EngineInput } from '../../src/engine/engine.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { ingest } from '../../src/ingest/ingest.js';
import { shareOut } from '../../src/kafka/rounds.js';
import { HOUR, accountTakeover } from '../../src/scenarios/reference.js';
import { MemoryPipeline } from '../support/engine.js';
import { shippedConfig } from '../support/snapshot.js';

async function takeoverBatches(tag: string) {
  const { config } = shippedConfig();
  const geo = await GeoIp.open(config.maxmind);
  const s = accountTakeover(Date.now() - 2 * HOUR, tag);
  const inputs = (events: (typeof s.phases)[0]): EngineInput[] =>
    events.map((e) => {
      const r = ingest(e.family, e.event, config.validation, geo);
      if (!r.ok) throw new Error(r.detail);
      return { kind: 'event', event: r.event };
    });
  const attack = s.phases[1]!;
  return {
    history: inputs(s.phases[0]!),
    // a fetch's batches: one per topic
    round: [
      inputs(attack.filter((e) => e.family === 'login')),
      inputs(attack.filter((e) => e.family === 'payment')),
      inputs(attack.filter((e) => e.family !== 'login' && e.family !== 'payment')),
    ].filter((b) => b.length),
  };
}

describe('a round of batches', () => {
  it('gives each batch the outcomes of its own messages and each flag to the batch of its trigger', async () => {
    const { history, round } = await takeoverBatches('round-share');
    expect(round.length).toBeGreaterThanOrEqual(2);
    const p = new MemoryPipeline();
    await p.batch(history);
    const result = await p.batch(round.flat());
    expect(result.emissions).toHaveLength(1);
    const shares = shareOut(result, round);
    expect(shares.map((s) => s.outcomes.length)).toEqual(round.map((b) => b.length));
    expect(shares.flatMap((s) => s.outcomes)).toEqual(result.outcomes);
    expect(shares.flatMap((s) => s.emissions)).toEqual(result.emissions);
    const trigger = result.emissions[0]!.flag.triggeringEventId;
    shares.forEach((s, i) => {
      const holds = round[i]!.some((x) => x.kind === 'event' && x.event.event.eventId === trigger);
      expect(s.emissions.length, `batch ${i}`).toBe(holds ? 1 : 0);
    });
  });

  it('raises the same flags as the batches processed one after the other', async () => {
    const { history, round } = await takeoverBatches('round-same');
    const together = new MemoryPipeline();
    await together.batch(history);
    await together.batch(round.flat());
    const apart = new MemoryPipeline();
    await apart.batch(history);
    for (const b of round) await apart.batch(b);
    expect(together.flags).toEqual(apart.flags);
  });

  it('refuses a result that does not match the batches', async () => {
    const { history, round } = await takeoverBatches('round-mismatch');
    const p = new MemoryPipeline();
    const result = await p.batch(history);
    expect(() => shareOut(result, round)).toThrow(/outcomes for/);
  });
});
