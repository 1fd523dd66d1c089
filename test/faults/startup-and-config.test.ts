// Unusable files and settings: a corrupt MaxMind database stops `run` with exit code 3 naming the
// file; an IP the databases do not know is an event without a location, not a dead letter; an
// invalid config stops `run` with exit code 1 and every problem; an invalid config on reload,
// while events flow, is rejected and the running config stays (the end state equals a reference
// run with the old config).
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { runCli, startCli, type RunningCli } from './support/child.js';
import { Driver, compare, reference, streamBadMessages, until } from './support/driver.js';
import { faultEnv } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

const dir = mkdtempSync(join(tmpdir(), 'fairflag-faults-'));
const BAD_MMDB = join(PROJECT_ROOT, 'test/fixtures/maxmind/bad-data');

describe('start-up with unusable files and settings', () => {
  it.each(readdirSync(BAD_MMDB).filter((f) => f.endsWith('.mmdb')))(
    'a corrupt MaxMind database (%s) stops `run` with exit code 3 and names the file',
    async (name) => {
      const file = join(BAD_MMDB, name);
      const r = await runCli({ ...faultEnv('mmdb'), FAIRFLAG__maxmind__city: file }, ['run']);
      expect(r.code, r.output).toBe(3);
      expect(r.output).toContain(`fairflag: MaxMind database ${file} is unreadable`);
    },
  );

  it('an invalid config stops `run` with exit code 1 and lists every problem', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'signals:\n  login:\n    failed_burst:\n      threshold: ten\nreview:\n  threshold: -1\n  action: ban\nredis:\n  keyprefix: x\n',
    );
    const r = await runCli(faultEnv('badconfig'), ['run', '--config', file]);
    expect(r.code, r.output).toBe(1);
    for (const problem of [
      'signals.login.failed_burst.threshold: expected a positive integer, got "ten"',
      'review.threshold:',
      'review.action: expected "review", the only action fairflag can take, got "ban"',
      'redis.keyprefix: unknown setting',
    ])
      expect(r.output).toContain(problem);
    expect(r.output).toContain(file);
  });
});

describe('an IP the MaxMind databases do not know', () => {
  const d = new Driver(faultEnv('unknown-ip'));
  afterAll(async () => {
    await d.close();
  });

  it('gives an event without location, not a dead letter', async () => {
    await d.connect();
    const proc = await d.startProcessor();
    try {
      const at = Date.now() - 60_000;
      const ips = ['192.0.2.10', '2001:db8::77'];
      await d.publish(
        ips.map((ip, i) => ({
          event: {
            family: 'login' as const,
            event: {
              eventId: `unknown-ip-${i}`,
              accountId: `acct-unknown-ip-${i}`,
              occurredAt: at,
              outcome: 'SUCCESS' as const,
              ip,
              deviceId: `dev-u${i}`,
              sessionId: `s-u${i}`,
            },
          },
        })),
      );
      await d.settle();
      expect(await d.deadLetters()).toEqual([]);
      for (const [i, ip] of ips.entries()) {
        const a = await proc.storedAccount(`acct-unknown-ip-${i}`);
        expect([...a.events.get('session')!.values()]).toEqual([at]); // a session was seen
        expect([...a.values.get('personalIp')!.keys()]).toEqual([ip]);
        // no location: no country, and no session to measure distances from
        expect(a.values.get('country')).toBeUndefined();
        expect(a.sessions.size).toBe(0);
      }
      expect(proc.counts.processed).toBe(2);
    } finally {
      await proc.stop();
    }
  });
});

describe('an invalid config on reload while events flow', () => {
  const file = join(dir, 'env.yaml');
  const good = 'signals:\n  payment:\n    failed_verifications:\n      threshold: 2\n';
  writeFileSync(file, good);
  const env = faultEnv('reload');
  const d = new Driver(env, file);
  let child: RunningCli | undefined;
  afterAll(async () => {
    child?.kill('SIGKILL');
    await d.close();
  });

  it('is rejected with its errors, the running config stays, and the result equals the old config', async () => {
    await d.connect();
    const w = buildWorkload({ seed: 61 });
    const bad = await streamBadMessages(d, 'reload');
    const ref = await reference(d.loaded, w, d.redis);
    const c = await startCli(env, ['--config', file]);
    child = c;
    await c.waitReady();
    const running = d.loaded.version;
    expect(c.output).toContain(`"configVersion":"${running}"`);

    let rejections = 0;
    await d.run(w, {
      bad,
      gapMs: 400,
      during: async (stream) => {
        await stream.reached(0.3);
        // an analyst saves a broken file (the watcher reloads), then someone sends SIGHUP too
        writeFileSync(
          file,
          'signals:\n  payment:\n    failed_verifications:\n      threshold: two\nreview:\n  action: ban\n',
        );
        await until('the rejection', () => c.output.includes('config reload rejected'), 30_000);
        c.kill('SIGHUP');
        await until(
          'the second rejection',
          () => c.output.split('config reload rejected').length > 2,
          30_000,
        );
        rejections = c.output.split('config reload rejected').length - 1;
        expect(await c.ready()).toBe(true);
        // and fixed again before the stream ends: same content, same version
        writeFileSync(file, good);
        await until('the good file to be reloaded', () => c.output.includes('config reloaded'), 30_000);
      },
    });
    expect(rejections).toBeGreaterThanOrEqual(2);
    const rejected = c.output.split('\n').find((l) => l.includes('config reload rejected'))!;
    expect(JSON.parse(rejected)).toMatchObject({
      keeping: running,
      problems: expect.arrayContaining([
        'signals.payment.failed_verifications.threshold: expected a positive integer, got "two"',
        'review.action: expected "review", the only action fairflag can take, got "ban"',
      ]),
    });

    const r = await compare('invalid config reload', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    expect(r.outcome.deadLetters).toBe(bad.length);
    // every flag was scored with the running config
    expect(new Set(r.flags.map((f) => f.configVersion))).toEqual(new Set([running]));
    expect(c.running).toBe(true);
  });
});
