// A running `fairflag run` refuses a reload that changes what it opened at start (topics,
// connections), keeps its running config, and still applies a reload of the policy.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Codec } from '../../src/kafka/codec.js';
import { kafkaClient } from '../../src/kafka/processor.js';
import { publishActivity, waitForCatchUp } from '../../src/kafka/topic-tools.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { createLogger } from '../../src/runtime/logger.js';
import { startCli, type RunningCli } from '../faults/support/child.js';
import { until } from '../faults/support/driver.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';

describe('config reload of start-only settings', () => {
  let child: RunningCli | undefined;
  afterAll(() => child?.kill('SIGKILL'));

  it('rejects a change of topics or Kafka settings with every change named, counts it, and keeps running', async () => {
    const { FAIRFLAG__topics__flags: flags, ...env } = isolatedEnv('reload-guard', endpoints(), 't');
    const file = join(mkdtempSync(join(tmpdir(), 'fairflag-reload-')), 'env.yaml');
    writeFileSync(file, `topics:\n  flags: ${flags}\n`);
    const c = loadConfig({ env, file }).config;
    child = await startCli(env, ['--config', file]);
    await child.waitReady();
    const version = /"configVersion":"(cfg-[0-9a-f]+)"/.exec(child.output)?.[1];

    writeFileSync(file, `topics:\n  flags: ${flags}.moved\nkafka:\n  maxBytes: 1048576\n`);
    child.kill('SIGHUP');
    await until('the rejection', () => child!.output.includes('config reload rejected'));
    expect(child.output).toContain(
      `topics.flags: was \\"${flags}\\", now \\"${flags}.moved\\" (read at start only: restart the processor to change it)`,
    );
    expect(child.output).toContain('kafka.maxBytes: was 4194304, now 1048576');
    expect(child.output).toContain(`"keeping":"${version}"`);
    // the file watch may reload once more after the SIGHUP: at least one rejection, no reload applied
    expect(await child.metric('fairflag_config_reloads_total', 'result="rejected"')).toBeGreaterThanOrEqual(
      1,
    );
    expect(await child.metric('fairflag_config_reloads_total', 'result="applied"')).toBe(0);

    // the running config stays: events on its topics are still processed
    const log = createLogger('reload-guard-test');
    log.level = 'error';
    const kafka = kafkaClient(c.kafka, log, '-test');
    const producer = kafka.producer();
    const admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    try {
      const codec = await Codec.connect(c);
      await publishActivity(producer, codec, c.topics, [
        {
          family: 'login',
          event: {
            eventId: 'reload-guard-1',
            accountId: 'acct-reload-guard',
            occurredAt: Date.now() - 60_000,
            outcome: 'FAILURE',
            ip: '175.16.199.1',
            deviceId: null,
            sessionId: null,
          },
        },
      ]);
      await waitForCatchUp(admin, c.kafka.groupId, [c.topics.login], 60_000);
    } finally {
      await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
    }
    expect(await child.metric('fairflag_events_total', 'outcome="processed"')).toBe(1);

    // a policy change with the topics as they were is applied
    writeFileSync(
      file,
      `topics:\n  flags: ${flags}\nsignals:\n  login:\n    failed_burst:\n      threshold: 12\n`,
    );
    child.kill('SIGHUP');
    await until('the reload', () => child!.output.includes('config reloaded'));
    expect(await child.metric('fairflag_config_reloads_total', 'result="applied"')).toBeGreaterThanOrEqual(1);

    child.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
  });
});
