// Issue 17, as a property: a hostile stream interleaved with the known good workload on every
// topic. fast-check draws the hostile messages: random bytes, wire-format headers with random
// schema ids (unknown ones, and ids registered with schemas fairflag cannot use), records of
// another topic's schema, the topic's own id over random bytes, records of the topic's schema
// with random field values (at least one of them invalid), huge keys, too many or too large
// headers; each on a random input topic and partition. Whatever is drawn: every good event's
// features and flags equal an undisturbed run (replay of the good workload alone), every hostile
// message is dead-lettered exactly once with a reason its kind allows, no batch is retried at all
// (nothing here is an outage or a batch-level failure), and the processor's event loop is never
// held for more than EVENT_LOOP_BUSY_LIMIT_MS (its own CPU time while a 2 ms timer was late).
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/events.js';
import * as events from '../../src/scenarios/reference.js';
import { registerUnusableSchemas, wireFrame } from '../support/unusable-schemas.js';
import { startCli, type RunningCli } from './support/child.js';
import { Driver, compare, reference, type BadMessage, type DeadLetterRecord } from './support/driver.js';
import { LoopWatch, metricValue } from './support/poison.js';
import { faultEnv } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

/** See poison-pills.test.ts: the loop thread's own CPU time while a 2 ms timer was late. */
const EVENT_LOOP_BUSY_LIMIT_MS = 100;
const EVENT_LOOP_LAG_LIMIT_MS = 1000;
const RUNS = 2;

const FAMILIES: Family[] = ['login', 'ip', 'payment', 'contract', 'account'];

type Kind =
  | 'bytes'
  | 'unknown-id'
  | 'unusable-id'
  | 'other-schema'
  | 'own-id-random-body'
  | 'random-fields'
  | 'huge-key'
  | 'huge-headers';

/** The reasons each kind of hostile message may be dead-lettered with. */
const REASONS: Record<Kind, string[]> = {
  bytes: ['not_wire_format'],
  'unknown-id': ['unknown_schema_id'],
  'unusable-id': ['unsupported_schema'],
  'other-schema': ['wrong_schema'],
  // random bytes after the topic's own id: they do not decode, or decode to nonsense
  'own-id-random-body': ['undecodable', 'invalid_field', 'wrong_partition'],
  'random-fields': ['invalid_field'],
  'huge-key': ['oversized'],
  'huge-headers': ['oversized'],
};

/** A hostile message as drawn: what it is, where it goes, and how to build its bytes. */
interface Drawn {
  kind: Kind;
  /** 0-4: an activity family's topic; 5: review outcomes (only for kinds that need no family). */
  topic: number;
  partition: number;
  bytes: Uint8Array;
  id: number;
  pick: number;
  size: number;
  text: string;
  invalid: number;
}

const drawn: fc.Arbitrary<Drawn> = fc
  .record({
    kind: fc.constantFrom<Kind>(
      'bytes',
      'unknown-id',
      'unusable-id',
      'other-schema',
      'own-id-random-body',
      'random-fields',
      'huge-key',
      'huge-headers',
    ),
    topic: fc.integer({ min: 0, max: 5 }),
    partition: fc.integer({ min: 0, max: 2 }),
    bytes: fc.uint8Array({ maxLength: 200 }),
    id: fc.oneof(
      fc.integer({ min: 1_000_000_000, max: 2_147_483_647 }),
      fc.integer({ min: -2_147_483_648, max: -1 }),
    ),
    pick: fc.nat(),
    size: fc.integer({ min: 0, max: 1_000_000 }),
    text: fc.string({ unit: 'binary', maxLength: 40 }),
    invalid: fc.nat(),
  })
  .map((x) =>
    // what needs a family's schema goes to an activity topic
    ['other-schema', 'own-id-random-body', 'random-fields'].includes(x.kind)
      ? { ...x, topic: x.topic % 5 }
      : x,
  );

/** Fields whose schema type is an enum: a random text does not encode. */
const ENUMS = new Set(['outcome', 'action', 'methodType', 'accountType', 'disputeReason']);

/** Values no validation accepts, one per field it checks (at least one goes into a record). */
const INVALID: [string, unknown][] = [
  ['ip', 'fe80::1%en-0'],
  ['ip', '999.1.1.1'],
  ['ip', '::ffff:'],
  ['eventId', ''],
  ['eventId', 'has space'],
  ['accountId', '{braces}'],
  ['occurredAt', 0],
  ['occurredAt', 4_102_444_800_000],
  ['deviceId', 'd'.repeat(200)],
];

describe('issue 17: a hostile stream beside the good workload (property)', () => {
  const children: RunningCli[] = [];
  const drivers: Driver[] = [];
  const outcomes: unknown[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const d of drivers) await d.close();
    console.log(`[fault outcome] hostile stream: ${JSON.stringify(outcomes)}`);
  });

  it('leaves the good results as an undisturbed run, dead-letters every hostile message once, retries nothing, never holds the loop', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(drawn, { minLength: 40, maxLength: 70 }),
        fc.integer({ min: 1, max: 1000 }),
        async (hostile, seed) => {
          run++;
          const d = new Driver(faultEnv(`hostile-${run}`));
          drivers.push(d);
          await d.connect();
          const t = d.topics;
          const topics = [t.login, t.ip, t.paymentMethod, t.contract, t.account, t.reviewOutcomes];
          const unusable = await registerUnusableSchemas(d.config.registry.url, d.config.redis.keyPrefix);
          const w = buildWorkload({ seed, streamScale: 0.4, rings: 3 });
          const ref = await reference(d.loaded, w, d.redis);

          const at = Date.now() - 3_600_000;
          const template = (family: Family, tag: string) => {
            const ids = { next: () => `ev-hostile-${tag}` };
            const acct = `acct-hostile-${tag}`;
            switch (family) {
              case 'login':
                return events.login(ids, acct, at, '81.2.69.160', { deviceId: 'dev-h' }).event;
              case 'ip':
                return events.ipObservation(ids, acct, at, '89.160.20.112').event;
              case 'payment':
                return events.payment(ids, acct, at, { ip: '81.2.69.160' }).event;
              case 'contract':
                return events.contract(ids, at, {
                  accountId: acct,
                  contractId: `ctr-${tag}`,
                  clientAccountId: acct,
                  freelancerAccountId: `${acct}-f`,
                  action: 'MILESTONE_PAID',
                  amount: 10,
                  ip: '81.2.69.160',
                }).event;
              case 'account':
                return events.account(ids, acct, at, { ip: '81.2.69.160' }).event;
            }
          };
          const bad: (BadMessage & { kind: Kind })[] = [];
          for (const [i, h] of hostile.entries()) {
            const name = `hostile-${i}-${h.kind}`;
            const family = FAMILIES[h.topic % 5]!;
            const base = { name, kind: h.kind, topic: topics[h.topic]!, partition: h.partition, reason: '' };
            const rand = Buffer.from(h.bytes);
            switch (h.kind) {
              case 'bytes':
                if (rand.length) rand[0] = rand[0]! | 1; // never the magic byte
                bad.push({ ...base, value: rand });
                break;
              case 'unknown-id':
                bad.push({ ...base, value: wireFrame(h.id, rand) });
                break;
              case 'unusable-id': {
                const ids = [unusable.draft04, unusable.emailFormat, unusable.unionDefault];
                bad.push({ ...base, value: wireFrame(ids[h.pick % 3]!, rand) });
                break;
              }
              case 'other-schema': {
                const other = FAMILIES.filter((f) => f !== family)[h.pick % 4]!;
                bad.push({ ...base, value: await d.codec.encode(other, template(other, `${i}`)) });
                break;
              }
              case 'own-id-random-body':
                bad.push({ ...base, value: wireFrame(d.codec.idOf(family), rand) });
                break;
              case 'random-fields': {
                const record = template(family, `${i}`) as unknown as Record<string, unknown>;
                // some fields random (any text where the schema has a string), one surely invalid
                const strings = Object.keys(record).filter(
                  (k) => typeof record[k] === 'string' && !ENUMS.has(k),
                );
                record[strings[h.pick % strings.length]!] = h.text;
                const applicable = INVALID.filter(([f]) => f in record);
                const [field, value] = applicable[h.invalid % applicable.length]!;
                record[field] = value;
                bad.push({ ...base, value: await d.codec.encode(family, record) });
                break;
              }
              case 'huge-key':
                bad.push({
                  ...base,
                  key: Buffer.alloc(1025 + (h.size % 400_000), h.pick % 256),
                  value: rand,
                });
                break;
              case 'huge-headers': {
                const headers: Record<string, Buffer> =
                  h.pick % 2
                    ? Object.fromEntries(
                        Array.from({ length: 65 + (h.size % 150) }, (_, k) => [`h${k}`, Buffer.from('v')]),
                      )
                    : { big: Buffer.alloc(16_385 + (h.size % 100_000), 1) };
                bad.push({ ...base, value: rand, headers });
                break;
              }
            }
          }

          const child = await startCli(d.env);
          children.push(child);
          await child.waitReady();
          const watch = new LoopWatch(child).start();
          await watch.reset();
          const t0 = Date.now();
          await d.run(w, { bad, chunk: 150, gapMs: 200 });
          const tookMs = Date.now() - t0;
          await watch.scrape();
          watch.stop();
          const metrics = (await (await child.get('/metrics'))?.text()) ?? '';

          const r = await compare(`hostile stream run ${run}`, d, w, ref, bad);
          const byName = new Map<string, DeadLetterRecord[]>();
          for (const x of r.dead) {
            const name = x.headers.find((hd) => hd.key === 'x-bad')?.value?.toString() ?? '(none)';
            byName.set(name, [...(byName.get(name) ?? []), x]);
          }
          const wrong = bad.flatMap((b) => {
            const got = byName.get(b.name) ?? [];
            return got.length === 1 && REASONS[b.kind].includes(got[0]!.reason)
              ? []
              : [
                  `${b.name}: ${got.length} dead letters ${got.map((x) => `${x.reason}: ${x.detail.slice(0, 120)}`).join(' | ')}`,
                ];
          });
          const kinds = Object.fromEntries(
            (Object.keys(REASONS) as Kind[]).map((k) => [k, bad.filter((b) => b.kind === k).length]),
          );
          const summary = {
            run,
            seed,
            hostile: bad.length,
            kinds,
            deadLetters: r.dead.length,
            goodEvents: ref.accepted,
            flags: r.outcome.flags,
            tookMs,
            busyMaxMs: Math.round(watch.busyMax),
            lagMaxMs: Math.round(watch.lagMax),
            scrapes: watch.samples,
            retries: metricValue(metrics, 'fairflag_batch_retries_total'),
            isolations: metricValue(metrics, 'fairflag_batch_isolations_total'),
          };
          outcomes.push(summary);
          child.kill('SIGTERM');
          await child.exited;

          expect(r.featureDiff).toEqual([]);
          expect(r.live).toEqual(ref.flags);
          expect(wrong).toEqual([]);
          expect(r.dead).toHaveLength(bad.length);
          expect(summary.retries).toBe(0);
          expect(summary.isolations).toBe(0);
          expect(watch.samples).toBeGreaterThan(20);
          expect(watch.busyMax).toBeLessThan(EVENT_LOOP_BUSY_LIMIT_MS);
          expect(watch.lagMax).toBeLessThan(EVENT_LOOP_LAG_LIMIT_MS);
        },
      ),
      // each run is a full stack run (about a minute): no shrinking, the seed is printed
      { numRuns: RUNS, endOnFailure: true, verbose: true },
    );
  });
});
