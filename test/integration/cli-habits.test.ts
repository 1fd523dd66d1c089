// The README's commands as a reader types them: `npm run --silent fairflag -- …` prints exactly the
// data (scenarios into a file that replay reads, --json that parses), and the "before a threshold
// ships" example changes what the README says it changes. Real Redis behind replay and diff.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/runtime/project.js';

const dir = mkdtempSync(join(tmpdir(), 'fairflag-habits-'));
const npm = (args: string[]) =>
  spawnSync('npm', ['run', '--silent', 'fairflag', '--', ...args], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    env: process.env,
  });

describe("the README's commands", () => {
  it('scenarios > file, then replay file --json: nothing but the data on standard output', () => {
    const scenarios = npm(['scenarios']);
    expect(scenarios.status, scenarios.stderr).toBe(0);
    const file = join(dir, 'scenarios.ndjson');
    writeFileSync(file, scenarios.stdout);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(lines.length).toBeGreaterThan(100);

    const r = npm(['replay', file, '--json', '--no-progress']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      accepted: number;
      flags: { accountId: string; severity: string }[];
    };
    expect(out.accepted).toBe(lines.length);
    expect(out.flags.map((f) => [f.accountId, f.severity])).toEqual([['acct-takeover-ndjson', 'high']]);
  });

  it("the diff example halves impossible travel's weight and the takeover drops from high to medium", () => {
    const file = join(dir, 'scenarios.ndjson');
    writeFileSync(file, npm(['scenarios']).stdout);
    const candidate = join(dir, 'candidate.yaml');
    writeFileSync(candidate, 'signals: {login: {impossible_travel: {weight: 0.75}}}\n');
    const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(
      `echo 'signals: {login: {impossible_travel: {weight: 0.75}}}' > /tmp/candidate.yaml`,
    );
    const d = npm(['diff', file, '--candidate', candidate, '--no-progress']);
    expect(d.status, d.stderr).toBe(1);
    const changed =
      /~ acct-takeover-ndjson account_security high [\d.]+ -> medium [\d.]+: severity high -> medium/;
    expect(d.stdout).toMatch(changed);
    // the README quotes the same line
    expect(readme).toMatch(changed);
  });
});
