import { describe, expect, it } from 'vitest';
import { COMPATIBILITY_LEVELS } from '../../config/schema.js';
import { readSchema } from '../../src/kafka/codec.js';
import { ConfigError, loadConfig } from '../../src/runtime/config-loader.js';
import { levelFor, readability, satisfies } from '../../src/kafka/subjects.js';
import avro from 'avsc';

describe('compatibility levels', () => {
  it('a level satisfies a requirement when it checks at least the same pairs of versions', () => {
    for (const level of COMPATIBILITY_LEVELS) {
      expect(satisfies('FULL_TRANSITIVE', level), level).toBe(true);
      expect(satisfies(level, level), level).toBe(true);
      expect(satisfies(level, 'NONE'), level).toBe(true);
    }
    expect(satisfies('NONE', 'BACKWARD')).toBe(false);
    expect(satisfies('BACKWARD_TRANSITIVE', 'FULL_TRANSITIVE')).toBe(false);
    expect(satisfies('FULL', 'FULL_TRANSITIVE')).toBe(false);
    expect(satisfies('FULL', 'BACKWARD')).toBe(true);
    expect(satisfies('FORWARD_TRANSITIVE', 'BACKWARD')).toBe(false);
    expect(satisfies('BACKWARD_TRANSITIVE', 'BACKWARD')).toBe(true);
  });

  it('is FULL_TRANSITIVE by default, per subject where configured, and a bad level is named', () => {
    const { config } = loadConfig({
      env: { FAIRFLAG__registry__subjectCompatibility__flags: 'BACKWARD_TRANSITIVE' },
    });
    expect(config.registry.registerInputSubjects).toBe(false);
    expect(levelFor('login', config.registry)).toBe('FULL_TRANSITIVE');
    expect(levelFor('flags', config.registry)).toBe('BACKWARD_TRANSITIVE');
    let err: unknown;
    try {
      loadConfig({ env: { FAIRFLAG__registry__subjectCompatibility__login: 'SOMETIMES' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toMatch(
      /registry\.subjectCompatibility\.login: expected one of NONE, BACKWARD, .*FULL_TRANSITIVE/,
    );
  });
});

describe('whether fairflag can read a registered version', () => {
  const reader = avro.Type.forSchema(JSON.parse(readSchema('login').text) as avro.Schema);
  const version = (schema: unknown, extra: object = {}) => ({ id: 7, version: 2, schema, ...extra });

  it('reads its own schema and a newer one with an added symbol', () => {
    expect(readability(reader, version(readSchema('login').text))).toHaveProperty('writer');
    const newer = JSON.parse(readSchema('login').text) as {
      fields: { name: string; type: { symbols?: string[] } }[];
    };
    newer.fields.find((f) => f.name === 'outcome')!.type.symbols!.push('PASSKEY_CHALLENGED');
    expect(readability(reader, version(JSON.stringify(newer)))).toHaveProperty('writer');
  });

  it('names what it cannot read', () => {
    const problem = (v: ReturnType<typeof version>) =>
      (readability(reader, v) as { problem: string }).problem;
    expect(problem(version('{}', { schemaType: 'JSON' }))).toBe('is a JSON schema, fairflag reads Avro');
    expect(problem(version(readSchema('ip').text))).toBe(
      'is fairflag.activity.IpObservationEvent, fairflag reads fairflag.activity.LoginEvent here',
    );
    const noIp = JSON.parse(readSchema('login').text) as { fields: { name: string }[] };
    noIp.fields = noIp.fields.filter((f) => f.name !== 'ip');
    expect(problem(version(JSON.stringify(noIp)))).toMatch(
      /^cannot be read with fairflag's fairflag\.activity\.LoginEvent: /,
    );
  });
});
