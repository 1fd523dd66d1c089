// An enum symbol a newer producer added reads as UNKNOWN (the enum's Avro default, see
// docs/schemas.md), and UNKNOWN says nothing: the same scenarios with an UNKNOWN twin beside each
// event give exactly the flags they give alone. In memory, through the production engine.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/events.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import type { EngineInput } from '../../src/engine/engine.js';
import { SCHEMA_FILES } from '../../src/kafka/codec.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { DAY, HOUR, accountTakeover, travellingFreelancer } from '../../src/scenarios/reference.js';
import { MemoryPipeline } from '../support/engine.js';
import { shippedConfig } from '../support/snapshot.js';
import { enriched } from '../support/stories.js';

const T0 = Date.UTC(2026, 5, 1, 8);
let geo: GeoIp;
beforeAll(async () => {
  geo = await GeoIp.open(shippedConfig().config.maxmind);
});

/** The same event with every enum this version reads as UNKNOWN, under a new id. */
function unknownTwin(e: ActivityEvent): ActivityEvent {
  const eventId = `${e.event.eventId}-unknown`;
  switch (e.family) {
    case 'login':
      return { family: 'login', event: { ...e.event, eventId, outcome: 'UNKNOWN' } };
    case 'payment':
      return { family: 'payment', event: { ...e.event, eventId, action: 'UNKNOWN' } };
    case 'contract':
      return { family: 'contract', event: { ...e.event, eventId, action: 'UNKNOWN' } };
    case 'account':
      return {
        family: 'account',
        event: { ...e.event, eventId, action: 'UNKNOWN', accountType: 'UNKNOWN' },
      };
    case 'ip':
      return e;
  }
}

async function flagsOf(phases: ActivityEvent[][], twins: boolean, now: number) {
  const p = new MemoryPipeline();
  for (const phase of phases) {
    const events = twins ? phase.flatMap((e) => (e.family === 'ip' ? [e] : [unknownTwin(e), e])) : phase;
    await p.feed(enriched(events, geo, now), 16);
  }
  return p;
}

describe('unknown enum symbols are neutral', () => {
  it('every input enum has a default symbol, and an added symbol reads as it', () => {
    for (const file of Object.values(SCHEMA_FILES)) {
      const schema = JSON.parse(readFileSync(join(PROJECT_ROOT, 'schemas', file), 'utf8')) as object;
      if (file === 'review-flag.avsc' || file === 'dead-letter.avsc') continue;
      const enums: { name: string; symbols: string[]; default?: string }[] = [];
      avro.Type.forSchema(schema as avro.Schema, {
        typeHook: (s) => {
          if (typeof s === 'object' && (s as { type?: string }).type === 'enum') enums.push(s as never);
          return undefined;
        },
      });
      for (const en of enums) {
        expect(en.default, `${file}: enum ${en.name}`).toBeDefined();
        expect(en.symbols).toContain(en.default);
      }
    }
    // a newer login schema with a symbol this version does not have
    const reader = avro.Type.forSchema(
      JSON.parse(readFileSync(join(PROJECT_ROOT, 'schemas', 'login.avsc'), 'utf8')) as avro.Schema,
    );
    const newer = JSON.parse(readFileSync(join(PROJECT_ROOT, 'schemas', 'login.avsc'), 'utf8')) as {
      fields: { name: string; type: { symbols?: string[] } }[];
    };
    newer.fields.find((f) => f.name === 'outcome')!.type.symbols!.push('MFA_CHALLENGED');
    const writer = avro.Type.forSchema(newer as avro.Schema);
    const record = { eventId: 'e', accountId: 'a', occurredAt: T0, outcome: 'MFA_CHALLENGED', ip: '1.1.1.1' };
    const read = reader.fromBuffer(
      writer.toBuffer({ ...record, deviceId: null, sessionId: null }),
      reader.createResolver(writer),
    ) as { outcome: string };
    expect(read.outcome).toBe('UNKNOWN');
  });

  it('the account takeover with an UNKNOWN twin of every event: the same one flag', async () => {
    const s = accountTakeover(T0, 'unk');
    const now = T0 + 2 * DAY;
    const alone = await flagsOf(s.phases, false, now);
    const withTwins = await flagsOf(s.phases, true, now);
    expect(alone.flags.length).toBeGreaterThan(0);
    expect(withTwins.flags).toEqual(alone.flags);
  });

  it('the travelling freelancer with an UNKNOWN twin of every event: still no flag', async () => {
    const s = travellingFreelancer(T0, 'unk');
    const p = await flagsOf(s.phases, true, T0 + 12 * DAY);
    expect(p.flags).toEqual([]);
  });

  it('an UNKNOWN step from a shared IP evaluates no signal and puts nothing on the IP', async () => {
    const ip = '216.160.83.56';
    const at = T0 + HOUR;
    const login = (accountId: string, n: number): ActivityEvent => ({
      family: 'login',
      event: {
        eventId: `l-${n}`,
        accountId,
        occurredAt: at + n,
        outcome: 'SUCCESS',
        ip,
        deviceId: null,
        sessionId: null,
      },
    });
    const unknownPayment: ActivityEvent = {
      family: 'payment',
      event: {
        eventId: 'p-unknown',
        accountId: 'acct-4',
        occurredAt: at + 10,
        action: 'UNKNOWN',
        methodId: 'pm-1',
        methodType: 'CARD',
        instrumentFingerprint: 'fp-1',
        ip,
        deviceId: 'dev-4',
      },
    };
    const p = new MemoryPipeline();
    await p.feed(enriched([login('acct-1', 1), login('acct-2', 2), login('acct-3', 3)], geo, at + DAY));
    const [unknown] = (await p.batch(enriched([unknownPayment], geo, at + DAY))).outcomes;
    expect(unknown).toMatchObject({ status: 'applied', evaluations: [] });
    // another account signing in from there is the fourth on the IP: acct-4 was never put on it
    const [known] = (await p.batch(enriched([login('acct-5', 11)], geo, at + DAY))).outcomes;
    const shared = known!.evaluations.find((e) => e.signalId === 'ip.shared_by_accounts')!;
    expect(shared.evaluation).toMatchObject({ observed: 4 });
  });

  it('an UNKNOWN review decision leaves the flag open; CONFIRMED then closes it', async () => {
    const s = accountTakeover(T0, 'unk-outcome');
    const p = await flagsOf(s.phases, false, T0 + 2 * DAY);
    const f = p.flags[0]!;
    const decided = (outcome: 'UNKNOWN' | 'CONFIRMED'): EngineInput => ({
      kind: 'outcome',
      outcome: {
        outcomeId: `o-${outcome}`,
        flagId: f.flagId,
        accountId: f.accountId,
        outcome,
        noteCategory: null,
        decidedAt: T0 + DAY,
      },
    });
    expect((await p.batch([decided('UNKNOWN')])).closed).toEqual([]);
    const closed = (await p.batch([decided('CONFIRMED')])).closed;
    expect(closed.map((c) => [c.accountId, c.state.flagId, c.outcome])).toEqual([
      [f.accountId, f.flagId, 'CONFIRMED'],
    ]);
  });
});
