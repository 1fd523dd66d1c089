// Connection settings and their secrets, in memory: how config and environment become kafkajs and
// registry options, where secrets come from (config, env, *_FILE), and that no dump or error shows them.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSSASLAuthenticationError,
} from 'kafkajs';
import pino from 'pino';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fatalConnectionCause, kafkaClient, kafkaConnection } from '../../src/kafka/connection.js';
import { registryAuthorization, registryBase } from '../../src/kafka/registry-http.js';
import { ConfigError, loadConfig, type LoadOptions } from '../../src/runtime/config-loader.js';
import { REDACTED, redactConfig, redactUrl, scrubSecrets } from '../../src/runtime/secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'fairflag-connections-'));
let n = 0;
function file(text: string, name = `f-${++n}`): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function problemsOf(opts: LoadOptions): string[] {
  try {
    loadConfig(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`accepted: ${JSON.stringify(opts)}`);
}

const SCRAM = {
  FAIRFLAG_KAFKA_SSL: 'true',
  FAIRFLAG_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
  FAIRFLAG_KAFKA_SASL_USERNAME: 'fairflag',
};

describe('Kafka TLS and SASL settings', () => {
  it('come from named environment variables, the password from a file with its line break dropped', () => {
    const ca = file('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const pw = file('pw-from-file-1\n');
    const { config } = loadConfig({
      env: { ...SCRAM, FAIRFLAG_KAFKA_SSL_CA_FILE: ca, FAIRFLAG_KAFKA_SASL_PASSWORD_FILE: pw },
    });
    expect(config.kafka.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'fairflag' });
    expect(config.kafka.sasl.password).toBe('pw-from-file-1');
    const options = kafkaConnection(config.kafka);
    expect(options.sasl).toEqual({
      mechanism: 'scram-sha-512',
      username: 'fairflag',
      password: 'pw-from-file-1',
    });
    expect(options.ssl).toEqual({ ca: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'] });
    expect(options.connectionTimeout).toBe(10_000);
  });

  it('give a client certificate and key to brokers that ask for one', () => {
    const [cert, key] = [file('CERT PEM'), file('KEY PEM')];
    const { config } = loadConfig({
      env: {
        FAIRFLAG_KAFKA_SSL: 'true',
        FAIRFLAG_KAFKA_SSL_CERT_FILE: cert,
        FAIRFLAG_KAFKA_SSL_KEY_FILE: key,
      },
    });
    expect(kafkaConnection(config.kafka).ssl).toEqual({ cert: 'CERT PEM', key: 'KEY PEM' });
    expect(problemsOf({ env: { FAIRFLAG_KAFKA_SSL: 'true', FAIRFLAG_KAFKA_SSL_CERT_FILE: cert } })).toEqual([
      expect.stringMatching(/^kafka\.ssl\.keyFile: expected certFile and keyFile together/),
    ]);
  });

  it('default to plaintext without SASL, as before', () => {
    const options = kafkaConnection(loadConfig({ env: {} }).config.kafka);
    expect(options.ssl).toBe(false);
    expect(options.sasl).toBeUndefined();
  });

  it('take a password given by path override as text, whatever it looks like', () => {
    const { config } = loadConfig({ env: { ...SCRAM, FAIRFLAG__kafka__sasl__password: '123456' } });
    expect(config.kafka.sasl.password).toBe('123456');
  });

  it('oauthbearer reads the token file again at each authentication', async () => {
    const token = file('token-one\n');
    const { config } = loadConfig({
      env: { FAIRFLAG_KAFKA_SASL_MECHANISM: 'oauthbearer', FAIRFLAG_KAFKA_SASL_TOKEN_FILE: token },
    });
    const sasl = kafkaConnection(config.kafka).sasl as {
      oauthBearerProvider: () => Promise<{ value: string }>;
    };
    expect((await sasl.oauthBearerProvider()).value).toBe('token-one');
    writeFileSync(token, 'token-two');
    expect((await sasl.oauthBearerProvider()).value).toBe('token-two');
  });

  it('refuse what cannot work, naming the setting, and never quote a secret', () => {
    expect(problemsOf({ env: { FAIRFLAG_KAFKA_SASL_MECHANISM: 'scram-sha-1' } })).toEqual([
      expect.stringMatching(
        /^kafka\.sasl\.mechanism: expected one of none, plain, scram-sha-256, scram-sha-512, oauthbearer/,
      ),
    ]);
    expect(problemsOf({ env: { FAIRFLAG_KAFKA_SASL_MECHANISM: 'plain' } })).toEqual([
      expect.stringMatching(/^kafka\.sasl\.username: expected a username for plain/),
      expect.stringMatching(/^kafka\.sasl\.password: expected a password or passwordFile for plain/),
    ]);
    expect(
      problemsOf({
        env: { ...SCRAM, FAIRFLAG_KAFKA_SASL_PASSWORD: 'hunter22', FAIRFLAG_KAFKA_SASL_PASSWORD_FILE: '/x' },
      }),
    ).toEqual([
      expect.stringMatching(/^kafka\.sasl\.passwordFile: expected password or passwordFile, not both/),
    ]);
    expect(problemsOf({ env: { FAIRFLAG_KAFKA_SSL_CA_FILE: '/etc/ca.pem' } })).toEqual([
      expect.stringMatching(/^kafka\.ssl\.caFile: set, but kafka\.ssl\.enabled is false/),
    ]);
    // what the mechanism does not use is named, not ignored
    expect(problemsOf({ env: { FAIRFLAG_KAFKA_SASL_PASSWORD: 'hunter22' } })).toEqual([
      `kafka.sasl.password: set, but not used by mechanism none, got ${REDACTED}`,
    ]);
    expect(
      problemsOf({
        env: { ...SCRAM, FAIRFLAG_KAFKA_SASL_PASSWORD: 'x', FAIRFLAG_KAFKA_SASL_TOKEN_FILE: '/t' },
      }),
    ).toEqual(['kafka.sasl.tokenFile: set, but not used by mechanism scram-sha-512, got "(set)"']);
    const missing = join(dir, 'no-such-password');
    expect(problemsOf({ env: { ...SCRAM, FAIRFLAG_KAFKA_SASL_PASSWORD_FILE: missing } })).toEqual([
      `kafka.sasl.passwordFile: cannot read ${missing} (ENOENT)`,
    ]);
    expect(problemsOf({ env: { ...SCRAM, FAIRFLAG_KAFKA_SASL_PASSWORD_FILE: file('\n') } })).toEqual([
      expect.stringMatching(/^kafka\.sasl\.passwordFile: .* is empty$/),
    ]);
    // a secret of the wrong type is reported by its path, without its value
    const bad = file(stringify({ kafka: { sasl: { password: ['s3cret-in-a-list'] } } }), 'bad.yaml');
    const problems = problemsOf({ file: bad, env: SCRAM });
    expect(problems).toEqual([`kafka.sasl.password: expected text, got ${REDACTED}`]);
    expect(problems.join()).not.toContain('s3cret-in-a-list');
  });
});

describe('schema registry credentials', () => {
  it('basic auth from settings, a password file, or the URL; never left in the URL', () => {
    const pw = file('reg-pw-from-file\n');
    const fromFile = loadConfig({
      env: {
        FAIRFLAG_REGISTRY_URL: 'https://registry.example:8443/apis/ccompat/v7/',
        FAIRFLAG_REGISTRY_USERNAME: 'fairflag',
        FAIRFLAG_REGISTRY_PASSWORD_FILE: pw,
      },
    }).config.registry;
    expect(registryAuthorization(fromFile)).toBe(
      `Basic ${Buffer.from('fairflag:reg-pw-from-file').toString('base64')}`,
    );
    expect(registryBase(fromFile)).toBe('https://registry.example:8443/apis/ccompat/v7');
    const inUrl = loadConfig({ env: { FAIRFLAG_REGISTRY_URL: 'https://ff:p%40ss@registry.example/apis' } })
      .config.registry;
    expect(registryAuthorization(inUrl)).toBe(`Basic ${Buffer.from('ff:p@ss').toString('base64')}`);
    expect(registryBase(inUrl)).toBe('https://registry.example/apis');
  });

  it('a bearer token file is read at each request', () => {
    const token = file('tok-1\n');
    const { registry } = loadConfig({
      env: { FAIRFLAG_REGISTRY_URL: 'https://r.example/apis', FAIRFLAG_REGISTRY_TOKEN_FILE: token },
    }).config;
    expect(registryAuthorization(registry)).toBe('Bearer tok-1');
    writeFileSync(token, 'tok-2\n');
    expect(registryAuthorization(registry)).toBe('Bearer tok-2');
  });

  it('refuses half or double credentials, and warns about credentials over plain http', () => {
    expect(problemsOf({ env: { FAIRFLAG_REGISTRY_USERNAME: 'ff' } })).toEqual([
      expect.stringMatching(
        /^registry\.password: expected a password or passwordFile with registry\.username/,
      ),
    ]);
    expect(
      problemsOf({
        env: {
          FAIRFLAG_REGISTRY_USERNAME: 'ff',
          FAIRFLAG_REGISTRY_PASSWORD: 'x',
          FAIRFLAG_REGISTRY_TOKEN: 't',
        },
      }),
    ).toEqual([
      expect.stringMatching(
        /^registry\.username: expected basic auth \(username\) or a bearer token, not both/,
      ),
    ]);
    expect(problemsOf({ env: { FAIRFLAG_REGISTRY_CA_FILE: '/etc/ca.pem' } })).toEqual([
      'registry.caFile: set, but registry.url is not https, got "/etc/ca.pem"',
    ]);
    const { warnings } = loadConfig({
      env: { FAIRFLAG_REGISTRY_USERNAME: 'ff', FAIRFLAG_REGISTRY_PASSWORD: 'x' },
    });
    expect(warnings).toContain('registry.url: credentials would be sent over plain http; use https');
  });
});

describe('redaction', () => {
  const loaded = () =>
    loadConfig({
      env: {
        ...SCRAM,
        FAIRFLAG_KAFKA_SASL_PASSWORD: 'kafka-secret-1',
        FAIRFLAG_REGISTRY_URL: 'https://reg.example/apis',
        FAIRFLAG_REGISTRY_USERNAME: 'ff',
        FAIRFLAG_REGISTRY_PASSWORD: 'registry-secret-2',
        FAIRFLAG_REDIS_URL: 'redis://:redis-secret-3@127.0.0.1:6379',
      },
    });

  it('a config dump shows where secrets are set, never what they are', () => {
    const { config } = loaded();
    const dump = stringify(redactConfig(config));
    for (const s of ['kafka-secret-1', 'registry-secret-2', 'redis-secret-3']) expect(dump).not.toContain(s);
    expect(redactConfig(config).kafka.sasl.password).toBe(REDACTED);
    expect(redactConfig(config).registry.password).toBe(REDACTED);
    expect(redactConfig(config).redis.url).toBe(`redis://:${REDACTED}@127.0.0.1:6379`);
    // the config in use is untouched
    expect(config.kafka.sasl.password).toBe('kafka-secret-1');
    expect(redactConfig(config).registry.token).toBeNull();
  });

  it('URLs keep everything but the password', () => {
    expect(redactUrl('https://user:pw@host:8443/x?y=1')).toBe(`https://user:${REDACTED}@host:8443/x?y=1`);
    expect(redactUrl('http://127.0.0.1:28081/apis/ccompat/v7')).toBe(
      'http://127.0.0.1:28081/apis/ccompat/v7',
    );
  });

  it('error texts lose every secret they quote', () => {
    expect(scrubSecrets('auth failed for kafka-secret-1 at x', ['kafka-secret-1', null])).toBe(
      `auth failed for ${REDACTED} at x`,
    );
  });
});

describe('kafkajs log lines', () => {
  it('lose a password they quote, message and details alike', () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const { config } = loadConfig({ env: { ...SCRAM, FAIRFLAG_KAFKA_SASL_PASSWORD: 'pw-in-a-log-line' } });
    const kafka = kafkaClient(config.kafka, log);
    kafka
      .logger()
      .error('failed with pw-in-a-log-line', { broker: 'b:9092', detail: 'x pw-in-a-log-line y' });
    kafka.logger().error('nothing secret here', { broker: 'b:9092' });
    expect(lines).toHaveLength(2);
    expect(lines.join('')).not.toContain('pw-in-a-log-line');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: `failed with ${REDACTED}`,
      kafkajs: { broker: 'b:9092', detail: `x ${REDACTED} y` },
    });
    expect(JSON.parse(lines[1]!)).toMatchObject({
      msg: 'nothing secret here',
      kafkajs: { broker: 'b:9092' },
    });
  });
});

describe('which connection failures end start-up', () => {
  const { config } = loadConfig({ env: { ...SCRAM, FAIRFLAG_KAFKA_SASL_PASSWORD: 'pw-pw-pw' } });

  it('refused credentials and a certificate not trusted; a broker not up yet is retried', () => {
    const sasl = new (KafkaJSSASLAuthenticationError as unknown as new (m: string) => Error)(
      'SASL SCRAM SHA512 authentication failed: invalid credentials',
    );
    expect(fatalConnectionCause(sasl, config.kafka)).toMatch(
      /^SASL SCRAM-SHA-512 authentication of user "fairflag" refused: SASL SCRAM SHA512 authentication failed/,
    );
    const cert = new KafkaJSConnectionError(
      'Connection error: self-signed certificate in certificate chain',
      {
        broker: '127.0.0.1:39092',
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
      },
    );
    const wrapped = new KafkaJSNumberOfRetriesExceeded(cert, { retryCount: 0, retryTime: 0 });
    expect(fatalConnectionCause(wrapped, config.kafka)).toMatch(
      /^TLS: the broker's certificate is not accepted \(SELF_SIGNED_CERT_IN_CHAIN: .*\); set kafka\.ssl\.caFile/,
    );
    const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:39092', {
      broker: '127.0.0.1:39092',
      code: 'ECONNREFUSED',
    });
    expect(fatalConnectionCause(refused, config.kafka)).toBeUndefined();
  });
});
