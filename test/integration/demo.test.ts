// The README's demo command prints the flags with their signals and mitigations.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';

describe('fairflag demo', () => {
  it('plays both scenarios and prints the flag with its signals, mitigations and notice', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), 'demo'], {
      cwd: PROJECT_ROOT,
      // topics (and so registry subjects) of its own: the demo sets their compatibility level
      env: { ...process.env, ...isolatedEnv('demo', endpoints(), 't') },
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/Scenario A: The travelling freelancer[\s\S]*result: {3}no flag/);
    expect(out).toMatch(/Scenario B: Account takeover[\s\S]*result: {3}1 flag message\(s\)/);
    expect(out).toMatch(/action REVIEW {2}queue account_security {2}severity high/);
    for (const signal of [
      'login.impossible_travel',
      'login.failed_burst',
      'login.new_device',
      'login.new_country',
      'payment.added_after_risky_login',
    ]) {
      expect(out).toContain(signal);
    }
    expect(out).toMatch(/mitigations:\n\s+tenure: account \d+d old/);
    expect(out).toContain('member notice [Account security]');
    expect(out).toMatch(/Bad input: 2 message\(s\)/);
    expect(out).toContain('Both scenarios behaved as shared/scenarios.md expects.');
  });
});
