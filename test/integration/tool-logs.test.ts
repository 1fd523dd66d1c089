// The commands people read print their report, not the JSON log, unless --log-level asks for it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../faults/support/child.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';

/** Lines that are pino JSON log records. */
function logLines(output: string): Record<string, unknown>[] {
  return output.split('\n').flatMap((line) => {
    try {
      const v = JSON.parse(line) as unknown;
      return typeof v === 'object' && v !== null && 'level' in v && 'msg' in v
        ? [v as Record<string, unknown>]
        : [];
    } catch {
      return [];
    }
  });
}

describe('human-facing commands and the log', () => {
  // FAIRFLAG_LOG_LEVEL=info is in this environment (childEnv): it is for `run`, not for these
  const env = isolatedEnv('tool-logs', endpoints(), 't');
  const dir = mkdtempSync(join(tmpdir(), 'fairflag-tool-logs-'));
  const file = join(dir, 'scenarios.ndjson');

  it('replay prints only its report, and logs as JSON on stderr with --log-level info', async () => {
    expect((await runCli(env, ['scenarios', '--out', file])).code).toBe(0);
    const quiet = await runCli(env, ['replay', file]);
    expect(quiet.code, quiet.output).toBe(0);
    expect(quiet.output).toMatch(/^replay of .*scenarios\.ndjson with config cfg-/);
    expect(quiet.output).toContain('events read 140, accepted 140, rejected 0');
    expect(logLines(quiet.output)).toEqual([]);

    const logged = await runCli(env, ['replay', file, '--log-level', 'info']);
    expect(logged.code, logged.output).toBe(0);
    expect(logged.output).toContain('events read 140, accepted 140, rejected 0');
    expect(logLines(logged.output).map((l) => l['msg'])).toEqual(['replay started', 'replay finished']);
  });

  it('bootstrap prints its summary, not the JSON log of its Kafka client', async () => {
    const snapshot = join(dir, 'snapshot.ndjson');
    writeFileSync(
      snapshot,
      `${JSON.stringify({ accountId: 'acct-tool-logs', createdAt: '2024-01-01T00:00:00Z' })}\n`,
    );
    const r = await runCli(env, ['bootstrap', snapshot]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain(`bootstrap of ${snapshot}: 1 account(s)`);
    expect(logLines(r.output)).toEqual([]);
  });

  it('refuses an unknown log level as a usage error', async () => {
    const r = await runCli(env, ['replay', file, '--log-level', 'loud']);
    expect(r.code).toBe(2);
    expect(r.output).toContain(
      '--log-level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    );
  });
});
