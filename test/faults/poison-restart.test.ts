// Issue 17: a restart in the middle of a poison-pill sequence dead-letters nothing twice. The
// first `fairflag run` holds every batch between its writes and its commit and is killed with
// SIGKILL while it holds one whose dead letters are on the dead-letter topic; its successor
// replays that batch. The successor is stopped (SIGTERM) while pills are still arriving and a
// third instance finishes the sequence. Every pill is dead-lettered exactly once.
import type { Message } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import * as events from '../../src/scenarios/reference.js';
import { accountsOn } from '../support/config.js';
import { wireFrame } from '../support/unusable-schemas.js';
import { startCli, type RunningCli } from './support/child.js';
import { Driver, type DeadLetterRecord, until } from './support/driver.js';
import { goodRound, unprocessed, type GoodRound } from './support/poison.js';
import { faultEnv } from './support/stack.js';

interface LogLine {
  msg?: string;
  topic?: string;
  partition?: number;
  offset?: string;
}
const lines = (c: RunningCli): LogLine[] =>
  c.output.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });

describe('issue 17: a restart in the middle of a poison-pill sequence', () => {
  // a short session, so the successor does not wait 30 s for the killed member to be dropped
  const env = faultEnv('poison-restart', { FAIRFLAG__kafka__sessionTimeout: '8s' });
  const d = new Driver(env);
  const children: RunningCli[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await d.close();
  });

  it('dead-letters nothing twice', async () => {
    await d.connect();
    const t = d.topics;
    const at = Date.now() - 120_000;
    let n = 0;
    const sent: { name: string; reason: string }[] = [];
    const rounds: GoodRound[] = [];
    /** Six pills, one per partition of the login and ip topics, of different kinds; then good events. */
    const wave = async (w: number) => {
      for (const [topic, family] of [
        [t.login, 'login'],
        [t.ip, 'ip'],
      ] as const) {
        for (let p = 0; p < 3; p++) {
          const [acct] = accountsOn(p, 1, `acct-restart-${w}-${family}`);
          const kind = n++ % 4;
          const name = `w${w}-${family}-p${p}-k${kind}`;
          const record =
            family === 'login'
              ? events.login({ next: () => `ev-${name}` }, acct!, at, 'fe80::1%en-0').event
              : events.ipObservation({ next: () => `ev-${name}` }, acct!, at, 'fe80::1%en-0').event;
          const [value, key, reason] =
            kind === 0
              ? [Buffer.from([0x13, 0x37, p]), acct!, 'not_wire_format']
              : kind === 1
                ? [wireFrame(1_800_000_000 + n), acct!, 'unknown_schema_id']
                : kind === 2
                  ? [await d.codec.encode(family, record), acct!, 'invalid_field']
                  : [Buffer.from('x'), 'k'.repeat(5000), 'oversized'];
          const m: Message = { key, value, partition: p, headers: { 'x-pill': name } };
          await d.producer.send({ topic, acks: -1, messages: [m] });
          sent.push({ name, reason });
        }
      }
      rounds.push(await goodRound(d, `restart-${w}`));
    };

    // 1. an instance that holds every batch after its writes, killed while it holds dead letters
    const holder = await startCli({ ...env, FAIRFLAG_FAULT_HOLD_BEFORE_COMMIT_MS: '3000' });
    children.push(holder);
    await holder.waitReady();
    await wave(1);
    await until(
      'the holder to hold a batch whose dead letters it has produced',
      () => {
        const log = lines(holder);
        return log.some(
          (l, i) =>
            l.msg?.startsWith('batch written, not yet committed') &&
            log
              .slice(0, i)
              .some((x) => x.msg === 'dead-lettered' && x.topic === l.topic && x.partition === l.partition),
        );
      },
      60_000,
      10,
    );
    holder.kill('SIGKILL');
    expect((await holder.exited).signal).toBe('SIGKILL');
    // the window was hit: dead letters on the topic whose source offsets are not committed
    const committed = await d.committed();
    const uncommitted = (await d.deadLetters()).filter(
      (x) => BigInt(x.sourceOffset) >= (committed.get(`${x.sourceTopic}/${x.sourcePartition}`) ?? 0n),
    );
    expect(uncommitted.length).toBeGreaterThan(0);

    // 2. its successor replays those batches, then is stopped while pills are still arriving
    const successor = await startCli(env);
    children.push(successor);
    await successor.waitReady();
    await wave(2);
    await d.settle(120_000);
    await wave(3);
    successor.kill('SIGTERM');
    expect((await successor.exited).code).toBe(0);

    // 3. a third instance finishes the sequence
    const last = await startCli(env);
    children.push(last);
    await last.waitReady();
    await wave(4);
    await d.settle(120_000);

    const dead = await d.deadLetters();
    const byPill = new Map<string, DeadLetterRecord[]>();
    for (const x of dead) {
      const name = x.headers.find((h) => h.key === 'x-pill')?.value?.toString() ?? '(none)';
      byPill.set(name, [...(byPill.get(name) ?? []), x]);
    }
    const problems = sent.flatMap(({ name, reason }) => {
      const got = byPill.get(name) ?? [];
      return got.length === 1 && got[0]!.reason === reason
        ? []
        : [
            `${name}: ${got.length} dead letters (${got.map((x) => x.reason).join(',')}), expected one ${reason}`,
          ];
    });
    console.log(
      `[fault outcome] poison restart: ${JSON.stringify({
        pills: sent.length,
        deadLetters: dead.length,
        uncommittedAtKill: uncommitted.length,
        skippedBySuccessor: lines(successor).filter((l) => l.msg === 'already dead-lettered').length,
      })}`,
    );
    expect(problems).toEqual([]);
    expect(dead).toHaveLength(sent.length);
    // the successor found what the killed instance had dead-lettered and did not produce it again
    const skipped = lines(successor).filter((l) => l.msg === 'already dead-lettered');
    expect(skipped.length).toBeGreaterThanOrEqual(uncommitted.length);
    expect(successor.output).toContain('an earlier attempt left dead letters of this partition uncommitted');
    for (const r of rounds) expect(await unprocessed(d, r)).toEqual([]);
    expect(last.running).toBe(true);
    expect(await last.ready()).toBe(true);
  });
});
