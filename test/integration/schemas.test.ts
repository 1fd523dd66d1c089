// Schema subjects on the real registry (Apicurio's ccompat API): compatibility set and checked on
// start, input subjects checked rather than registered, and a producer's newer schema version
// with an added enum symbol processed, not dead-lettered.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import avro from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Codec, SCHEMA_FILES, readSchema, topicOf, type SchemaRole } from '../../src/kafka/codec.js';
import { loadConfig, type LoadedConfig } from '../../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { MINUTE } from '../../src/scenarios/reference.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';
import { Harness } from '../support/pipeline.js';
import {
  compatibilityOf,
  registerVersion,
  registryCall,
  setCompatibility,
  versionsOf,
} from '../support/registry.js';

const INPUTS: SchemaRole[] = ['login', 'ip', 'payment', 'contract', 'account', 'reviewOutcome'];
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** An environment of its own whose input subjects fairflag only checks (the production default). */
const checkingEnv = (name: string, extra: Record<string, string> = {}) =>
  isolatedEnv(name, endpoints(), 't', { FAIRFLAG__registry__registerInputSubjects: 'false', ...extra });
const checkingConfig = (name: string, extra: Record<string, string> = {}) =>
  loadConfig({ env: checkingEnv(name, extra) });
const subjectOf = (role: SchemaRole, loaded: LoadedConfig) => `${topicOf(role, loaded.config.topics)}-value`;
const url = () => endpoints().registryUrl;

/** The input subjects as their producers would set them up: a level, then fairflag's schema. */
async function asProducers(
  loaded: LoadedConfig,
  level: (role: SchemaRole) => string,
  except: SchemaRole[] = [],
) {
  const ids: Partial<Record<SchemaRole, number>> = {};
  for (const role of INPUTS.filter((r) => !except.includes(r))) {
    await setCompatibility(url(), subjectOf(role, loaded), level(role));
    ids[role] = await registerVersion(url(), subjectOf(role, loaded), JSON.parse(readSchema(role).text));
  }
  return ids;
}

describe('schema subjects', () => {
  it('registers only flags and dead letters by default, with FULL_TRANSITIVE, and does not start while an input subject is missing', async () => {
    const loaded = checkingConfig('subjects-own');
    await expect(Codec.connect(loaded.config)).rejects.toThrow(
      new RegExp(
        `input subject ${esc(subjectOf('login', loaded))} is not in the schema registry: .*registry\\.registerInputSubjects is true`,
      ),
    );
    for (const role of INPUTS) expect(await versionsOf(url(), subjectOf(role, loaded)), role).toEqual([]);

    const ids = await asProducers(loaded, () => 'FULL_TRANSITIVE');
    const codec = await Codec.connect(loaded.config);
    for (const role of ['flag', 'deadLetter'] as const) {
      expect(await compatibilityOf(url(), subjectOf(role, loaded)), role).toBe('FULL_TRANSITIVE');
      expect(await versionsOf(url(), subjectOf(role, loaded)), role).toEqual([1]);
    }
    // the producers' subjects are as they left them; fairflag found its own schema among them
    for (const role of INPUTS) {
      expect(await versionsOf(url(), subjectOf(role, loaded)), role).toEqual([1]);
      expect(codec.idOf(role)).toBe(ids[role]);
    }
  });

  it('fairflag run exits 3 naming the missing input subject', () => {
    const env = checkingEnv('subjects-cli');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts'), 'run'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toContain(
      `fairflag: input subject ${env['FAIRFLAG__topics__login']}-value is not in the schema registry`,
    );
  });

  it('does not start when an input subject is less strict than required, unless that subject is configured so', async () => {
    const env = checkingEnv('subjects-weak');
    const loaded = loadConfig({ env });
    await asProducers(loaded, (role) => (role === 'login' ? 'BACKWARD' : 'FULL_TRANSITIVE'));
    await expect(Codec.connect(loaded.config)).rejects.toThrow(
      new RegExp(
        `input subject ${esc(subjectOf('login', loaded))} has compatibility BACKWARD, fairflag requires FULL_TRANSITIVE or stricter \\(registry\\.subjectCompatibility\\.login or registry\\.compatibility\\)`,
      ),
    );
    const relaxed = loadConfig({
      env: { ...env, FAIRFLAG__registry__subjectCompatibility__login: 'BACKWARD' },
    });
    await expect(Codec.connect(relaxed.config)).resolves.toBeInstanceOf(Codec);
  });

  it('does not start when an input subject holds a version it cannot read, naming the version', async () => {
    const loaded = checkingConfig('subjects-unreadable', {
      FAIRFLAG__registry__subjectCompatibility__login: 'NONE',
    });
    await asProducers(loaded, (role) => (role === 'login' ? 'NONE' : 'FULL_TRANSITIVE'));
    const login = JSON.parse(readSchema('login').text) as { fields: { name: string; type: unknown }[] };
    login.fields.find((f) => f.name === 'ip')!.type = 'int';
    await registerVersion(url(), subjectOf('login', loaded), login);
    await expect(Codec.connect(loaded.config)).rejects.toThrow(
      /has versions fairflag cannot read as schemas\/login\.avsc: version 2 \(id \d+\) cannot be read with fairflag's fairflag\.activity\.LoginEvent/,
    );
  });

  it("a tool writing an input topic (bootstrap) adds its version under the producers' level, which it leaves", async () => {
    const loaded = checkingConfig('subjects-writer', {
      FAIRFLAG__registry__subjectCompatibility__account: 'BACKWARD',
    });
    await asProducers(loaded, () => 'FULL_TRANSITIVE', ['account']);
    // the producers' account schema has a field fairflag's does not (with a default)
    const theirs = JSON.parse(readSchema('account').text) as { fields: object[] };
    theirs.fields.push({ name: 'locale', type: ['null', 'string'], default: null });
    const subject = subjectOf('account', loaded);
    await setCompatibility(url(), subject, 'FULL');
    await registerVersion(url(), subject, theirs);

    const reader = await Codec.connect(loaded.config);
    expect(() => reader.idOf('account')).toThrow(
      new RegExp(
        `schemas/account\\.avsc is not registered under ${esc(subject)}, so fairflag cannot write it`,
      ),
    );
    expect(await versionsOf(url(), subject)).toEqual([1]);

    const writer = await Codec.connect(loaded.config, () => {}, { produces: ['account'] });
    expect(await versionsOf(url(), subject)).toEqual([1, 2]);
    const v2 = await registryCall<{ id: number }>(
      url(),
      `/subjects/${encodeURIComponent(subject)}/versions/2`,
    );
    expect(writer.idOf('account')).toBe(v2.body.id);
    expect(await compatibilityOf(url(), subject)).toBe('FULL');
  });

  it('a subject holding a version from before the enum defaults refuses the new one under FULL_TRANSITIVE, and takes it at BACKWARD', async () => {
    const env = isolatedEnv('subjects-migrate', endpoints(), 't');
    const loaded = loadConfig({ env });
    const subject = subjectOf('login', loaded);
    // the login schema as it was: no UNKNOWN symbol, no enum default
    const before = JSON.parse(readSchema('login').text) as {
      fields: { name: string; type: { symbols?: string[]; default?: string } }[];
    };
    const outcome = before.fields.find((f) => f.name === 'outcome')!.type;
    outcome.symbols = outcome.symbols!.filter((x) => x !== 'UNKNOWN');
    delete outcome.default;
    await setCompatibility(url(), subject, 'BACKWARD');
    await registerVersion(url(), subject, before);
    await expect(Codec.connect(loaded.config)).rejects.toThrow(
      new RegExp(
        `schemas/login\\.avsc is not FULL_TRANSITIVE compatible with the versions registered under ${esc(subject)}, so the registry refused it \\(docs/schemas\\.md: moving a registry to these schemas\\)`,
      ),
    );
    const step = loadConfig({ env: { ...env, FAIRFLAG__registry__subjectCompatibility__login: 'BACKWARD' } });
    await expect(Codec.connect(step.config)).resolves.toBeInstanceOf(Codec);
    expect(await versionsOf(url(), subject)).toEqual([1, 2]);
  });

  it("refuses to register a flag schema that the flags subject's earlier readers could not read", async () => {
    const loaded = checkingConfig('subjects-flag');
    await asProducers(loaded, () => 'FULL_TRANSITIVE');
    // an earlier flag version with a field (no default) that fairflag's flag no longer has
    const earlier = JSON.parse(readSchema('flag').text) as { fields: object[] };
    earlier.fields.push({ name: 'queueOwner', type: 'string' });
    await setCompatibility(url(), subjectOf('flag', loaded), 'NONE');
    await registerVersion(url(), subjectOf('flag', loaded), earlier);
    await expect(Codec.connect(loaded.config)).rejects.toThrow(
      new RegExp(
        `schemas/${esc(SCHEMA_FILES.flag)} is not FULL_TRANSITIVE compatible with the versions registered under ${esc(subjectOf('flag', loaded))}`,
      ),
    );
  });
});

describe('a producer adds an enum symbol', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness(loadConfig({ env: isolatedEnv('enum-evolution', endpoints(), 't') })).start();
  }, 120_000);
  afterAll(async () => {
    await h?.stop();
  });

  it('the registry accepts the newer login schema, and its messages are processed, not dead-lettered', async () => {
    const subject = `${h.topics.login}-value`;
    expect(await compatibilityOf(url(), subject)).toBe('FULL_TRANSITIVE');
    const newer = JSON.parse(readSchema('login').text) as {
      fields: { name: string; type: { symbols?: string[] } }[];
    };
    newer.fields.find((f) => f.name === 'outcome')!.type.symbols!.push('PASSKEY_CHALLENGED');
    // accepted under FULL_TRANSITIVE only because fairflag's version has the enum default
    const id = await registerVersion(url(), subject, newer);
    expect(await versionsOf(url(), subject)).toEqual([1, 2]);

    const writer = avro.Type.forSchema(newer as avro.Schema);
    const frame = (record: object) => {
      const header = Buffer.alloc(5);
      header.writeInt32BE(id, 1);
      return Buffer.concat([header, writer.toBuffer(record)]);
    };
    const at = Date.now() - MINUTE;
    const base = { accountId: 'acct-newer-writer', ip: '216.160.83.56', deviceId: 'dev-1', sessionId: 's-1' };
    const before = { ...h.proc.counts };
    await h.publishRaw(h.topics.login, [
      {
        key: base.accountId,
        value: frame({ ...base, eventId: 'e-new-1', occurredAt: at, outcome: 'PASSKEY_CHALLENGED' }),
      },
      {
        key: base.accountId,
        value: frame({ ...base, eventId: 'e-new-2', occurredAt: at + 1, outcome: 'SUCCESS' }),
      },
    ]);
    await h.settle();
    expect(await h.deadLetters()).toEqual([]);
    expect(h.proc.counts.processed - before.processed).toBe(2);
    expect(h.proc.counts.deadLettered - before.deadLettered).toBe(0);
  });
});
