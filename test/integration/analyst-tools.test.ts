// What analysts rely on before a threshold ships and after a review: replay equals the live
// pipeline, diff names whom a change stops reviewing, replay stays in its namespace, review
// outcomes close the loop.
import type { Redis } from 'ioredis';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/events.js';
import type { ReviewFlag } from '../../src/domain/flags.js';
import { compilePolicy } from '../../src/engine/policy.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { DAY, HOUR, accountTakeover, travellingFreelancer } from '../../src/scenarios/reference.js';
import { diffConfigs } from '../../src/tools/diff.js';
import { explainStored } from '../../src/tools/explain.js';
import { readNdjson, replay, type ReplayItem } from '../../src/tools/replay.js';
import { Codec } from '../../src/kafka/codec.js';
import { ensureTopics, kafkaClient } from '../../src/kafka/processor.js';
import { createLogger } from '../../src/runtime/logger.js';
import { isolatedConfig, isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';
import { Harness } from '../support/pipeline.js';
import { sharedGroup } from '../support/stories.js';
import { registerUnusableSchemas, wireFrame } from '../support/unusable-schemas.js';

const dir = mkdtempSync(join(tmpdir(), 'fairflag-analyst-'));
const toItems = (events: ActivityEvent[]): ReplayItem[] =>
  events.map((e, i) => ({ where: `line ${i + 1}`, family: e.family, record: e.event }));

const essence = (f: ReviewFlag) => ({
  flagId: f.flagId,
  accountId: f.accountId,
  queue: f.reviewQueue,
  action: f.action,
  severity: f.severity,
  score: f.score,
  signals: f.signals.map((s) => [s.id, s.observed, s.threshold, s.window]).sort(),
  mitigations: f.mitigations.map((m) => m.id).sort(),
});

describe('replay, diff and explain', () => {
  it('replays the reference scenarios to the same flags as the live pipeline', async () => {
    const runId = `rp${Date.now().toString(36)}`;
    const a = travellingFreelancer(Date.now() - 11 * DAY, runId);
    const b = accountTakeover(Date.now() - 2 * HOUR, runId);
    const h = await new Harness(isolatedConfig('replay-live')).start();
    try {
      await h.publishPhases([
        [...a.phases[0]!, ...b.phases[0]!],
        [...a.phases[1]!, ...b.phases[1]!],
      ]);
      const live = await h.flags();
      const events = [...a.phases.flat(), ...b.phases.flat()].sort(
        (x, y) => x.event.occurredAt - y.event.occurredAt,
      );
      const file = join(dir, 'scenarios.ndjson');
      writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
      const items: ReplayItem[] = [];
      for await (const item of readNdjson(file)) items.push(item);
      const r = await replay({ loaded: h.loaded, items });
      expect(r.rejected).toEqual([]);
      expect(r.flags.map(essence)).toEqual(live.map(essence));
      expect(r.flags).toHaveLength(1);
      expect(r.flags[0]!.accountId).toBe(b.accountId);
    } finally {
      await h.stop();
    }
  });

  it('diff on a raised threshold names exactly the accounts no longer reviewed, and why', async () => {
    const start = Date.now() - 6 * HOUR;
    const events = [
      ...sharedGroup('dx', 5, '89.160.20.120', start),
      ...sharedGroup('dy', 8, '89.160.20.121', start + HOUR),
    ];
    const base = loadConfig({ env: process.env });
    const file = join(dir, 'raise.yaml');
    writeFileSync(file, 'signals:\n  ip:\n    shared_by_accounts:\n      threshold: 6\n');
    const candidate = loadConfig({ env: process.env, file });
    const d = await diffConfigs(toItems(events), base, candidate);
    // base: the 4th account on an IP onwards reaches 4 accounts; candidate: only the 6th onwards
    expect(d.removed.map((c) => c.accountId)).toEqual(['acct-dx-3', 'acct-dx-4', 'acct-dy-3', 'acct-dy-4']);
    for (const c of d.removed) {
      expect(c.queue).toBe('identity');
      expect(c.why).toEqual(['ip.shared_by_accounts no longer fires']);
    }
    expect(d.added).toEqual([]);
    expect(d.changed.every((c) => c.accountId.startsWith('acct-dy-'))).toBe(true);
    const fires = d.fires.find((f) => f.signal === 'ip.shared_by_accounts')!;
    expect(fires.before).toBe(2 + 5);
    expect(fires.after).toBe(3);
  });

  it('reports a malformed NDJSON file line by line and still replays the good lines', () => {
    const good = JSON.stringify(sharedGroup('nd', 1, '89.160.20.122', Date.now() - HOUR)[0]);
    const file = join(dir, 'bad.ndjson');
    writeFileSync(
      file,
      [
        good,
        '{not json',
        '',
        '{"family":"fraud","event":{}}',
        '{"family":"login","event":{"eventId":"x1","accountId":"a","occurredAt":"yesterday","outcome":"SUCCESS","ip":"1.1.1.1","deviceId":null,"sessionId":null}}',
        JSON.stringify({
          family: 'login',
          event: { ...JSON.parse(good).event, eventId: 'x2', ip: '999.1.1.1' },
        }),
      ].join('\n'),
    );
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), 'replay', file, '--no-progress'],
      {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('events read 5, accepted 1, rejected 4');
    expect(r.stdout).toMatch(/line 2: not_json: not JSON/);
    expect(r.stdout).toMatch(
      /line 4: bad_shape: expected \{"family": one of login, ip, payment, contract, account/,
    );
    expect(r.stdout).toMatch(/line 5: invalid_field: occurredAt: does not fit the schema, got "yesterday"/);
    expect(r.stdout).toMatch(/line 6: invalid_field: ip: not an IPv4 or IPv6 address: "999\.1\.1\.1"/);
  });

  it('never writes outside its namespace, and removes the namespace when done', async () => {
    const loaded = loadConfig({ env: process.env });
    const policy = compilePolicy(loaded);
    const { connectRedis } = await import('../../src/kafka/processor.js');
    const redis = connectRedis(loaded.config.redis);
    await redis.connect();
    const allKeys = async () => {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await (redis as Redis).scan(cursor, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      return new Set(keys);
    };
    try {
      const events = [
        ...sharedGroup('ns', 5, '89.160.20.123', Date.now() - HOUR),
        ...accountTakeover(Date.now() - 2 * HOUR, 'ns').phases.flat(),
      ];
      const before = await allKeys();
      const kept = await replay({ loaded, items: toItems(events), keep: true });
      const created = [...(await allKeys())].filter((k) => !before.has(k));
      // at least every account's features
      expect(created.length).toBeGreaterThanOrEqual(6);
      expect(created.filter((k) => !k.startsWith(`${kept.namespace}:`))).toEqual([]);
      expect(kept.namespace.startsWith(`${policy.layout.keyPrefix}-replay-`)).toBe(true);
      const { RedisStateBackend } = await import('../../src/features/state-backend.js');
      await new RedisStateBackend(redis, kept.namespace).dropNamespace();
      const cleaned = await replay({ loaded, items: toItems(events) });
      expect(cleaned.namespaceRemoved).toBe(true);
      expect(await allKeys()).toEqual(before);
    } finally {
      redis.disconnect();
    }
  });
});

describe('review outcomes close the loop', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness(isolatedConfig('outcomes')).start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('a cleared review mitigates the same pattern for the cooldown; a confirmed one does not', async () => {
    const start = Date.now() - 5 * HOUR;
    const cleared = sharedGroup('oc', 5, '89.160.20.124', start);
    const confirmed = sharedGroup('of', 5, '89.160.20.125', start);
    // the first four of each group first (different partitions are consumed in no fixed order)
    await h.publish([...cleared.slice(0, 8), ...confirmed.slice(0, 8)]);
    await h.settle();
    await h.publish([...cleared.slice(8), ...confirmed.slice(8)]);
    await h.settle();
    const first = await h.flags();
    const flagOf = (acct: string) => first.filter((f) => f.accountId === acct).at(-1)!;
    const fc = flagOf('acct-oc-4');
    const ff = flagOf('acct-of-4');
    expect(fc.reviewQueue).toBe('identity');
    expect(ff.reviewQueue).toBe('identity');

    const decidedAt = Date.now() - 2 * HOUR;
    const outcome = async (
      f: ReviewFlag,
      outcome: 'CLEARED' | 'CONFIRMED' | 'NEEDS_MORE_INFO',
      id: string,
      at = decidedAt,
    ) => ({
      key: f.accountId,
      value: await h.proc.codec.encode('reviewOutcome', {
        outcomeId: id,
        flagId: f.flagId,
        accountId: f.accountId,
        outcome,
        noteCategory: outcome === 'CLEARED' ? 'shared-household' : 'fraud-confirmed',
        decidedAt: at,
      }),
    });
    // more information first (the flag stays open), sent twice as a case tool may resend
    const moreInfo = await outcome(ff, 'NEEDS_MORE_INFO', 'o-0', decidedAt - 10 * 60_000);
    await h.publishRaw(h.topics.reviewOutcomes, [moreInfo, moreInfo]);
    await h.settle();
    await h.publishRaw(h.topics.reviewOutcomes, [
      await outcome(fc, 'CLEARED', 'o-1'),
      await outcome(ff, 'CONFIRMED', 'o-2'),
    ]);
    await h.settle();

    // the same pattern again on both accounts: a new login from the shared IP
    const again = (acct: string, ip: string, n: string): ActivityEvent => ({
      family: 'login',
      event: {
        eventId: `again-${n}`,
        accountId: acct,
        occurredAt: Date.now() - HOUR,
        outcome: 'SUCCESS',
        ip,
        deviceId: 'dev-new',
        sessionId: null,
      },
    });
    await h.publish([again('acct-oc-4', '89.160.20.124', 'c'), again('acct-of-4', '89.160.20.125', 'f')]);
    await h.settle();
    const after = (await h.flags()).filter(
      (f) => !first.includes(f) && first.every((x) => x.flagId !== f.flagId || x.revision !== f.revision),
    );
    expect(after.filter((f) => f.accountId === 'acct-oc-4')).toEqual([]);
    const reopened = after.filter((f) => f.accountId === 'acct-of-4');
    expect(reopened).toHaveLength(1);
    expect(reopened[0]!.flagId).not.toBe(ff.flagId);
    expect(reopened[0]!.revision).toBe(1);

    // explain shows the cleared pattern and its mitigation; the signals report counts both reviews
    const geo = await GeoIp.open(h.config.maxmind);
    const e = await explainStored('acct-oc-4', h.proc.backend, h.proc.activePolicy, geo);
    expect(e.clearedPatterns.map((p) => p.pattern)).toEqual([
      'identity:ip+payment|ip.shared_by_accounts,payment.shared_instrument',
    ]);
    // a signal with nothing remembered says so, not that it was "not evaluated"
    const quiet = e.signals.find((s) => s.id === 'contract.first_payment_then_dispute')!;
    expect(quiet.status).toBe('no observation');
    expect(quiet.summary).toMatch(/did not fire or was skipped/);
    const identity = e.decisions.find((d) => d.queue === 'identity')!;
    expect(identity.mitigations.map((m) => m.id)).toContain('cleared_review');
    expect(identity.severity).toBeUndefined();

    const reviews = await h.proc.backend.reviews(decidedAt - HOUR, Date.now());
    expect(reviews.map((r) => [r.outcomeId, r.flagId, r.queue, r.outcome])).toEqual([
      ['o-0', ff.flagId, 'identity', 'NEEDS_MORE_INFO'],
      ['o-1', fc.flagId, 'identity', 'CLEARED'],
      ['o-2', ff.flagId, 'identity', 'CONFIRMED'],
    ]);
    for (const r of reviews)
      expect(r.signals.sort()).toEqual(['ip.shared_by_accounts', 'payment.shared_instrument']);
    // the signals report: each decision once, the flags behind them as the denominator
    const report = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(PROJECT_ROOT, 'src/cli.ts'),
        'signals',
        '--since',
        '1d',
        '--period',
        'month',
        '--json',
      ],
      {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        env: { ...process.env, FAIRFLAG_REDIS_KEY_PREFIX: h.config.redis.keyPrefix },
      },
    );
    expect(report.status, report.stderr).toBe(0);
    const r = JSON.parse(report.stdout) as {
      byPeriodQueue: { queue: string; reviewedFlags: number; needsMoreInfo: number; precision: number }[];
      bySignal: { signal: string; confirmed: number; cleared: number }[];
    };
    expect(r.byPeriodQueue.map((x) => [x.queue, x.reviewedFlags, x.needsMoreInfo, x.precision])).toEqual([
      ['identity', 2, 1, 0.5],
    ]);
    expect(r.bySignal.find((x) => x.signal === 'ip.shared_by_accounts')).toMatchObject({
      confirmed: 1,
      cleared: 1,
    });
    const metrics = await h.proc.metrics.registry.getSingleMetricAsString('fairflag_review_outcomes_total');
    expect(metrics).toContain('signal="ip.shared_by_accounts",outcome="CLEARED"} 1');
  });
});

describe('the tools go on whatever a record is (issue 17)', () => {
  const cliRun = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), ...args], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    return { ...r, ms: Date.now() - t0 };
  };

  it('replay refuses an input that is not a regular file or is too large, at once, with exit 1', () => {
    const small = join(dir, 'small.ndjson');
    writeFileSync(small, `${JSON.stringify(sharedGroup('big', 1, '89.160.20.126', Date.now() - HOUR)[0])}\n`);
    const candidate = join(dir, 'candidate.yaml');
    writeFileSync(candidate, 'signals: {ip: {shared_by_accounts: {threshold: 6}}}\n');
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['replay', '/dev/zero'], {}, /fairflag: \/dev\/zero: not a regular file \(a character device\)/],
      [['diff', dir, '--candidate', candidate], {}, /: not a regular file \(a directory\)/],
      [
        ['replay', small],
        { FAIRFLAG__tools__maxInputBytes: '100' },
        /small\.ndjson: \d+ bytes, more than tools\.maxInputBytes \(100\)/,
      ],
    ];
    for (const [args, env, message] of cases) {
      const r = cliRun([...args, '--no-progress'], env);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.ms, args.join(' ')).toBeLessThan(60_000);
    }
  });

  it('replay reports a zone-id IPv6 and an over-long line with their line numbers and replays the rest', () => {
    const [good, other] = sharedGroup('zone', 2, '89.160.20.127', Date.now() - HOUR);
    const file = join(dir, 'zone.ndjson');
    writeFileSync(
      file,
      [
        JSON.stringify(good),
        JSON.stringify({ family: 'login', event: { ...good!.event, eventId: 'zone-1', ip: 'fe80::1%en-0' } }),
        JSON.stringify({
          family: 'login',
          event: { ...good!.event, eventId: 'zone-2', deviceId: 'd'.repeat(5000) },
        }),
        JSON.stringify(other),
      ].join('\n'),
    );
    const r = cliRun(['replay', file, '--no-progress'], { FAIRFLAG__tools__maxLineBytes: '2000' });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('events read 4, accepted 2, rejected 2');
    expect(r.stdout).toMatch(
      /line 2: invalid_field: ip: an IPv6 zone id \(after "%"\) is not accepted: "fe80::1%en-0"/,
    );
    expect(r.stdout).toMatch(/line 3: oversized: \d+ characters, more than tools\.maxLineBytes \(2000\)/);
  });

  it('replay --from-kafka reports unusable and unknown schema ids with their position and replays the rest', async () => {
    const env = isolatedEnv('tools-kafka', endpoints(), 't');
    const { config } = loadConfig({ env });
    const log = createLogger('tools-test');
    log.level = 'error';
    const kafka = kafkaClient(config.kafka, log, '-tools-test');
    const producer = kafka.producer();
    await producer.connect();
    try {
      await ensureTopics(kafka, config.topics);
      const codec = await Codec.connect(config);
      const ids = await registerUnusableSchemas(config.registry.url, config.redis.keyPrefix);
      const since = Date.now() - 1000;
      const [good] = sharedGroup('fk', 1, '89.160.20.128', Date.now() - HOUR);
      await producer.send({
        topic: config.topics.login,
        acks: -1,
        messages: [
          { key: 'a', partition: 0, value: wireFrame(ids.draft04) },
          { key: 'b', partition: 0, value: wireFrame(ids.unionDefault) },
          { key: 'c', partition: 0, value: wireFrame(2_000_000_001) },
          { key: good!.event.accountId, partition: 0, value: await codec.encode('login', good!.event) },
        ],
      });
      const r = cliRun(['replay', '--from-kafka', '--since', String(since), '--no-progress'], env);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toContain('events read 4, accepted 1, rejected 3');
      const at = (n: number) => `${config.topics.login.replace(/[.]/g, '\\.')}/0@${n}`;
      expect(r.stdout).toMatch(
        new RegExp(`${at(0)}: unsupported_schema: schema id ${ids.draft04} is a JSON schema`),
      );
      expect(r.stdout).toMatch(
        new RegExp(`${at(1)}: unsupported_schema: schema id ${ids.unionDefault} cannot be compiled as Avro`),
      );
      expect(r.stdout).toMatch(
        new RegExp(`${at(2)}: unknown_schema_id: schema id 2000000001 is not in the registry`),
      );
    } finally {
      await producer.disconnect();
    }
  });
});
