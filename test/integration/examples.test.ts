// examples/: the case-tool consumer prints a reviewer's line for the flag fairflag raised, and the
// outcome producer's decision is consumed by fairflag, which closes the flag. Each example runs as
// its own process against the real Kafka and registry, as a case tool would.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { HOUR, accountTakeover } from '../../src/scenarios/reference.js';
import { isolatedConfig } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';
import { Harness } from '../support/pipeline.js';

/** Runs an example to its end (killed, and failed, after `timeoutMs`). */
function runExample(file: string, args: string[], env: Record<string, string>, timeoutMs = 60_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(PROJECT_ROOT, 'examples', file), ...args],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...env },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('examples against the local stack', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness(isolatedConfig('examples')).start();
  }, 120_000);
  afterAll(async () => {
    await h?.stop();
  });

  it('the case-tool consumer prints the flag for a reviewer; the outcome producer closes it in fairflag', async () => {
    const s = accountTakeover(Date.now() - 2 * HOUR, `ex${Date.now().toString(36)}`);
    await h.publishPhases(s.phases);
    const [flag, ...more] = await h.flags();
    expect(more).toEqual([]);
    const services = {
      FAIRFLAG_KAFKA_BROKERS: endpoints().kafkaBrokers.join(','),
      FAIRFLAG_REGISTRY_URL: endpoints().registryUrl,
    };

    const consumer = await runExample('case-tool-consumer.ts', ['--from-beginning', '--max', '1'], {
      ...services,
      FLAGS_TOPIC: h.topics.flags,
      CASE_TOOL_GROUP: `case-tool-${h.config.kafka.groupId}`,
    });
    expect(consumer.code, consumer.stderr).toBe(0);
    const lines = consumer.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\[HIGH\\] account_security: review account ${s.accountId} \\(flag ${flag!.flagId} rev 1, score [\\d.]+ of 2, .*\\): .*login\\.impossible_travel \\(.* km/h\\).*; mitigations: tenure, verified_identity$`,
      ),
    );

    const open = async () =>
      [...(await h.proc.storedAccount(s.accountId)).openFlags.values()].map((f) => f.flagId);
    expect(await open()).toEqual([flag!.flagId]);
    const outcomesBefore = h.proc.counts.outcomes;
    const producer = await runExample(
      'outcome-producer.ts',
      [flag!.flagId, s.accountId, 'CONFIRMED', 'takeover-confirmed'],
      { ...services, OUTCOMES_TOPIC: h.topics.reviewOutcomes },
    );
    expect(producer.code, producer.stderr).toBe(0);
    expect(producer.stdout).toContain(`sent CONFIRMED for flag ${flag!.flagId}`);
    await h.settle();
    expect(h.proc.counts.outcomes - outcomesBefore).toBe(1);
    expect(await open()).toEqual([]);
    expect(await h.deadLetters()).toEqual([]);
  });
});
