// MaxMind databases as operators configure them: `run` refuses MaxMind's test databases unless
// allowed, and check-config opens every configured database as `run` would.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testDatabaseDescription } from '../../src/enrich/geoip.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { runCli } from '../faults/support/child.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';

const env = (extra: Record<string, string> = {}) => isolatedEnv('geoip', endpoints(), 't', extra);
const BAD = join(PROJECT_ROOT, 'test/fixtures/maxmind/bad-data/libmaxminddb-corrupt-search-tree.mmdb');

describe('MaxMind databases', () => {
  it('run refuses the test databases (exit 3), saying how to point at real ones', async () => {
    const r = await runCli(env({ FAIRFLAG__maxmind__allowTestDatabases: 'false' }), ['run']);
    expect(r.code, r.output).toBe(3);
    expect(r.output).toContain('MaxMind test databases configured: maxmind.city = ');
    expect(r.output).toContain('GeoIP2-City-Test.mmdb ("GeoIP2 City Test Database');
    expect(r.output).toContain('set FAIRFLAG_MAXMIND_DIR');
    expect(r.output).toContain('maxmind.allowTestDatabases: true');
  });

  it('tells a test database from a real one by its metadata description', () => {
    const meta = (en: string) => ({ description: { en } }) as never;
    expect(testDatabaseDescription(meta('GeoIP2 City Test Database (fake GeoIP2 data)'))).toBeDefined();
    expect(testDatabaseDescription(meta('GeoIP2 City database'))).toBeUndefined();
    expect(testDatabaseDescription(meta('GeoLite2 ASN database'))).toBeUndefined();
  });

  it('check-config fails naming a folder that does not exist (exit 1)', async () => {
    const missing = join(tmpdir(), 'fairflag-no-such-maxmind-folder');
    const r = await runCli(env({ FAIRFLAG_MAXMIND_DIR: missing }), ['check-config']);
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain(
      `MaxMind database ${missing}/GeoIP2-City.mmdb is unreadable: its folder ${missing} does not exist`,
    );
    expect(r.output).not.toContain('config OK');
  });

  it('check-config fails naming a database missing from its folder, and a corrupt one', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'fairflag-maxmind-'));
    const r = await runCli(env({ FAIRFLAG_MAXMIND_DIR: empty }), ['check-config']);
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain(`${empty}/GeoIP2-City.mmdb is unreadable: no such file in ${empty}`);
    const corrupt = await runCli(env({ FAIRFLAG__maxmind__asn: BAD }), ['check-config']);
    expect(corrupt.code, corrupt.output).toBe(1);
    expect(corrupt.output).toContain(`MaxMind database ${BAD} is unreadable: corrupt`);
  });

  it('check-config warns of test databases not allowed, and is quiet once they are', async () => {
    const warned = await runCli(env({ FAIRFLAG__maxmind__allowTestDatabases: 'false' }), ['check-config']);
    expect(warned.code, warned.output).toBe(0);
    expect(warned.output).toMatch(
      /warning: maxmind\.city: .*GeoIP2-City-Test\.mmdb is a MaxMind test database .*`run` refuses it unless maxmind\.allowTestDatabases is true/,
    );
    const allowed = await runCli(env(), ['check-config']);
    expect(allowed.code, allowed.output).toBe(0);
    expect(allowed.output).not.toContain('warning');
    expect(allowed.output).toContain('config OK');
  });
});
