// Labelled backtests (issue 20): replay and diff take review outcomes (NDJSON lines of family
// review_outcome, or the review-outcome topic with --from-kafka) and report what reviewers
// decided about the flags: precision per queue and signal, and of the accounts a change stops
// reviewing, how many had been confirmed. Real Redis (the replay namespace), Kafka and registry.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ReviewOutcome } from '../../src/domain/events.js';
import { Codec, topicOf } from '../../src/kafka/codec.js';
import { connectRedis, ensureTopics, kafkaClient } from '../../src/kafka/processor.js';
import { RedisStateBackend } from '../../src/features/state-backend.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { createLogger } from '../../src/runtime/logger.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { HOUR } from '../../src/scenarios/reference.js';
import { replay, type ReplayItem } from '../../src/tools/replay.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';
import { sharedGroup } from '../support/stories.js';

const dir = mkdtempSync(join(tmpdir(), 'fairflag-labels-'));
// the commands that read events draw a progress bar unless told not to
const READERS = new Set(['replay', 'diff', 'sweep']);
const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(PROJECT_ROOT, 'src/cli.ts'),
      ...args,
      ...(READERS.has(args[0]!) ? ['--no-progress'] : []),
    ],
    {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env,
    },
  );

const start = Date.now() - 6 * HOUR;
// five accounts on one personal IP: the 4th and 5th (acct-lb-3, -4) reach the shared-IP threshold
const events = sharedGroup('lb', 5, '89.160.20.126', start);
let outcomes: ReviewOutcome[] = [];
let file = '';
const ndjson = (lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';

beforeAll(async () => {
  // what production raised: the flags the reviewers then decided on
  const raised = await replay({
    loaded: loadConfig({ env: process.env }),
    items: events.map((e, i): ReplayItem => ({ where: `line ${i + 1}`, family: e.family, record: e.event })),
  });
  const flagOf = (acct: string) => [...raised.finalFlags.values()].find((f) => f.accountId === acct)!;
  const decided = (acct: string, outcome: ReviewOutcome['outcome'], n: number): ReviewOutcome => ({
    outcomeId: `lb-o${n}`,
    flagId: flagOf(acct).flagId,
    accountId: acct,
    outcome,
    noteCategory: outcome === 'CLEARED' ? 'shared-household' : 'fraud-confirmed',
    decidedAt: start + 2 * HOUR,
  });
  outcomes = [decided('acct-lb-3', 'CONFIRMED', 1), decided('acct-lb-4', 'CLEARED', 2)];
  file = join(dir, 'week.ndjson');
  writeFileSync(
    file,
    ndjson([
      ...events,
      ...outcomes.map((event) => ({ family: 'review_outcome', event })),
    ] satisfies unknown[]),
  );
});

describe('labelled backtests', () => {
  it('replay joins each flag to its review outcome and reports precision per queue and signal', () => {
    const r = cli(['replay', file, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      accepted: number;
      labels: {
        outcomes: number;
        byQueue: Record<string, { flags: number; confirmed: number; cleared: number; precision: number }>;
        bySignal: Record<string, { flags: number; precision: number }>;
        overall: { samples: { confirmed: { accountId: string; signals: string[] }[] } };
      };
    };
    expect(out.accepted).toBe(events.length + 2);
    expect(out.labels.outcomes).toBe(2);
    expect(out.labels.byQueue['identity']).toMatchObject({
      flags: 2,
      confirmed: 1,
      cleared: 1,
      precision: 0.5,
    });
    expect(out.labels.bySignal['ip.shared_by_accounts']).toMatchObject({ flags: 2, precision: 0.5 });
    expect(out.labels.overall.samples.confirmed).toEqual([
      expect.objectContaining({
        accountId: 'acct-lb-3',
        signals: expect.arrayContaining(['ip.shared_by_accounts']),
      }),
    ]);

    const text = cli(['replay', file]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('flagged accounts: acct-lb-3, acct-lb-4\n');
    expect(text.stdout).toMatch(/review outcomes: 2 \(0 about accounts this replay does not flag\)/);
    expect(text.stdout).toMatch(/^ {2}identity +2 +1 +1 +0 +0 +50%$/m);
    expect(text.stdout).toMatch(
      /confirmed acct-lb-3 \(identity, \w+, score [\d.]+\): .*ip\.shared_by_accounts/,
    );
  });

  it('diff says how many of the accounts a change stops reviewing had been confirmed or cleared', () => {
    const candidate = join(dir, 'raise.yaml');
    writeFileSync(candidate, 'signals:\n  ip:\n    shared_by_accounts:\n      threshold: 6\n');
    const r = cli(['diff', file, '--candidate', candidate, '--json']);
    expect(r.status, r.stderr).toBe(1);
    const d = JSON.parse(r.stdout) as {
      removed: { accountId: string; label: string; scoreBefore: number; scoreAfter: number | null }[];
      labels: { removed: Record<string, number> };
    };
    expect(d.removed.map((c) => [c.accountId, c.label])).toEqual([
      ['acct-lb-3', 'CONFIRMED'],
      ['acct-lb-4', 'CLEARED'],
    ]);
    for (const c of d.removed) {
      expect(c.scoreBefore).toBeGreaterThan(0);
      expect(c.scoreAfter).toBeNull();
    }
    expect(d.labels.removed).toEqual({ CONFIRMED: 1, CLEARED: 1, NEEDS_MORE_INFO: 0, NOT_REVIEWED: 0 });
    const text = cli(['diff', file, '--candidate', candidate]);
    expect(text.stdout).toContain(
      'of those who stop: 1 confirmed, 1 cleared, 0 needing more info, 0 not reviewed',
    );
    expect(text.stdout).toMatch(
      /- acct-lb-3 identity \w+ [\d.]+ -> none \[confirmed\]: ip\.shared_by_accounts no longer fires/,
    );
  });

  it("diff merges the candidate over the base: production's config plus the analyst's edit", () => {
    const base = join(dir, 'production.yaml');
    writeFileSync(base, 'signals:\n  ip:\n    shared_by_accounts:\n      threshold: 6\n');
    // an edit that changes nothing over that base, but would (threshold back to 4) over the defaults
    const edit = join(dir, 'edit.yaml');
    writeFileSync(edit, 'signals:\n  payment:\n    shared_instrument:\n      enabled: true\n');
    const r = cli(['diff', file, '--base', base, '--candidate', edit]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('0 start review, 0 stop, 0 change');
  });

  it("explain --namespace reads a replay's kept namespace", async () => {
    const kept = cli(['replay', file, '--keep', '--json']);
    expect(kept.status, kept.stderr).toBe(0);
    const { namespace } = JSON.parse(kept.stdout) as { namespace: string };
    try {
      const e = cli(['explain', 'acct-lb-3', '--namespace', namespace, '--json']);
      expect(e.status, e.stderr).toBe(0);
      const x = JSON.parse(e.stdout) as { namespace: string; known: boolean; openFlags: unknown[] };
      expect(x).toMatchObject({ namespace, known: true });
      // the live namespace never saw this replay's accounts
      expect(cli(['explain', 'acct-lb-3']).status).toBe(1);
    } finally {
      const redis = connectRedis(loadConfig({ env: process.env }).config.redis);
      await redis.connect();
      await new RedisStateBackend(redis, namespace).dropNamespace();
      redis.disconnect();
    }
  });

  it('sweep tries each threshold and says, per value, the flags, precision and confirmed cases lost', () => {
    const r = cli([
      'sweep',
      file,
      '--setting',
      'signals.ip.shared_by_accounts.threshold',
      '--values',
      '3:6:1',
      '--json',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as {
      current: number;
      labelled: boolean;
      points: {
        value: number;
        flags: number;
        labels: { confirmed: number; cleared: number; precision: number | null; confirmedLost: string[] };
      }[];
    };
    expect(s.current).toBe(4);
    expect(s.labelled).toBe(true);
    const at = new Map(s.points.map((p) => [p.value, p]));
    expect([...at.keys()]).toEqual([3, 4, 5, 6]);
    // a lower threshold adds acct-lb-2 (nobody reviewed it); today's value is the labelled replay
    expect(at.get(3)).toMatchObject({ flags: 3, labels: { confirmed: 1, cleared: 1, confirmedLost: [] } });
    expect(at.get(4)).toMatchObject({ flags: 2, labels: { precision: 0.5, confirmedLost: [] } });
    // 5: only the fifth account on the IP (cleared) is left; the confirmed one is lost
    expect(at.get(5)).toMatchObject({
      flags: 1,
      labels: { confirmed: 0, cleared: 1, precision: 0, confirmedLost: ['acct-lb-3 / identity'] },
    });
    expect(at.get(6)).toMatchObject({ flags: 0, labels: { precision: null } });

    const text = cli([
      'sweep',
      file,
      '--setting',
      'signals.ip.shared_by_accounts.threshold',
      '--values',
      '4,5',
    ]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^ {2}\* 4 +2 +2 +1 +1 +0 +50% +0$/m);
    expect(text.stdout).toContain('at 5: acct-lb-3 / identity');
    const bad = cli(['sweep', file, '--setting', 'signals.ip.shared_by_account.threshold', '--values', '4']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/signals\.ip has no "shared_by_account"/);
  });

  it('replay --from-kafka takes the labels from the review-outcome topic over the same range', async () => {
    const env = isolatedEnv('labels-kafka', endpoints(), 'l');
    const { config } = loadConfig({ env });
    const log = createLogger('labels-test');
    log.level = 'error';
    const kafka = kafkaClient(config.kafka, log, '-labels-test');
    // topics first: a producer connected before them may keep metadata without them
    await ensureTopics(kafka, config.topics);
    const producer = kafka.producer();
    await producer.connect();
    try {
      const codec = await Codec.connect(config);
      const since = Date.now() - 1000;
      for (const e of events)
        await producer.send({
          topic: topicOf(e.family, config.topics),
          acks: -1,
          messages: [{ key: e.event.accountId, value: await codec.encode(e.family, e.event) }],
        });
      await producer.send({
        topic: config.topics.reviewOutcomes,
        acks: -1,
        messages: await Promise.all(
          outcomes.map(async (o) => ({ key: o.accountId, value: await codec.encode('reviewOutcome', o) })),
        ),
      });
      const r = cli(['replay', '--from-kafka', '--since', String(since), '--json'], env);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as {
        eventsRead: number;
        labels: { byQueue: Record<string, { confirmed: number; cleared: number; precision: number }> };
      };
      expect(out.eventsRead).toBe(events.length + 2);
      expect(out.labels.byQueue['identity']).toMatchObject({ confirmed: 1, cleared: 1, precision: 0.5 });
    } finally {
      await producer.disconnect();
    }
  });
});
