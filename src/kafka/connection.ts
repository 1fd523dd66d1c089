// The one place a kafkajs client is made: every client (processor, producers, admins, the
// dead-letter ledger's reader, replay, bootstrap, demo, tests, benchmarks) connects with the same
// brokers, TLS and SASL settings. And a check before start-up that the brokers accept them: a
// certificate nobody trusts or a wrong password cannot get better by retrying, so it fails at
// once, naming the broker and the cause.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Kafka, Partitioners, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../runtime/logger.js';
import { readSecretFile, scrubSecrets } from '../runtime/secrets.js';
import { kafkaLogLevel } from './client-log.js';

type KafkaSettings = Config['kafka'];

/** A PEM file for TLS, or an error naming the setting and the file. */
function pem(file: string, setting: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new KafkaUnusableError(
      `${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
}

function tlsOptions(ssl: KafkaSettings['ssl']): ConnectionOptions | boolean {
  if (!ssl.enabled) return false;
  if (!ssl.caFile && !ssl.certFile) return true;
  return {
    ...(ssl.caFile && { ca: [pem(ssl.caFile, 'kafka.ssl.caFile')] }),
    ...(ssl.certFile && { cert: pem(ssl.certFile, 'kafka.ssl.certFile') }),
    ...(ssl.keyFile && { key: pem(ssl.keyFile, 'kafka.ssl.keyFile') }),
  };
}

function saslOptions(sasl: KafkaSettings['sasl']): SASLOptions | undefined {
  switch (sasl.mechanism) {
    case 'none':
      return undefined;
    case 'oauthbearer': {
      const file = sasl.tokenFile!;
      // asked at every (re)authentication: whatever renews the token only has to rewrite the file
      return {
        mechanism: 'oauthbearer',
        oauthBearerProvider: () => Promise.resolve({ value: readSecretFile(file, 'kafka.sasl.tokenFile') }),
      };
    }
    default:
      return { mechanism: sasl.mechanism, username: sasl.username!, password: sasl.password! };
  }
}

/** The connection part of a kafkajs config: the same for every client fairflag makes. */
export function kafkaConnection(
  cfg: KafkaSettings,
): Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl' | 'connectionTimeout' | 'authenticationTimeout'> {
  const sasl = saslOptions(cfg.sasl);
  return {
    brokers: cfg.brokers,
    ssl: tlsOptions(cfg.ssl),
    ...(sasl && { sasl }),
    connectionTimeout: cfg.connectionTimeout,
    authenticationTimeout: cfg.authenticationTimeout,
  };
}

/** A kafkajs client with fairflag's connection settings, retries and logging. */
export function kafkaClient(cfg: KafkaSettings, log: Logger, clientSuffix = ''): Kafka {
  const kafka = new Kafka({
    clientId: cfg.clientId + clientSuffix,
    ...kafkaConnection(cfg),
    logLevel: logLevel.WARN,
    retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 10_000 },
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        // kafkajs is not known to log credentials; should a message ever quote one, it is scrubbed
        const secret = cfg.sasl.password;
        if (secret && (message.includes(secret) || JSON.stringify(rest).includes(secret))) {
          let scrubbed: unknown = '[details left out: they quoted a secret]';
          try {
            scrubbed = JSON.parse(scrubSecrets(JSON.stringify(rest), [secret]));
          } catch {
            // a secret that spans JSON syntax: leave the details out rather than show them
          }
          log[kafkaLogLevel(level, entry)]({ kafkajs: scrubbed }, scrubSecrets(message, [secret]));
          return;
        }
        log[kafkaLogLevel(level, entry)]({ kafkajs: rest }, message);
      },
  });
  // every producer partitions by murmur2 (the partition an account's owner reads), chosen
  // explicitly rather than left to kafkajs's default, which warns about having changed once
  const producer = kafka.producer.bind(kafka);
  kafka.producer = (config) => producer({ createPartitioner: Partitioners.DefaultPartitioner, ...config });
  return kafka;
}

/** Kafka cannot be used with these settings: retrying would not help (exit code 3 at start). */
export class KafkaUnusableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaUnusableError';
  }
}

/** Node's codes for a certificate it does not accept (openssl's verify results, and the host check). */
const CERTIFICATE_CODES =
  /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_\w+|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)$/;

interface ErrorLike {
  name?: string;
  message?: string;
  code?: string;
  broker?: string;
  cause?: unknown;
}

function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  for (
    let e = err as ErrorLike | undefined;
    e && out.length < 8 && !out.includes(e);
    e = e.cause as ErrorLike
  )
    out.push(e);
  return out;
}

/**
 * Why a connection failure can never succeed as configured, or undefined when it may be passing
 * (a broker starting, a network blip): those are left to the clients' own retries.
 */
export function fatalConnectionCause(err: unknown, cfg: KafkaSettings): string | undefined {
  const errors = chain(err);
  const sasl = errors.find((e) => e.name === 'KafkaJSSASLAuthenticationError');
  if (sasl)
    return `SASL ${cfg.sasl.mechanism.toUpperCase()} authentication${cfg.sasl.username ? ` of user "${cfg.sasl.username}"` : ''} refused: ${sasl.message}`;
  const cert = errors.find((e) => CERTIFICATE_CODES.test(e.code ?? ''));
  if (cert)
    return `TLS: the broker's certificate is not accepted (${cert.code}: ${cert.message?.replace(/^Connection error: /, '')})${cfg.ssl.caFile ? ` with kafka.ssl.caFile ${cfg.ssl.caFile}` : '; set kafka.ssl.caFile to the CA that signed it'}`;
  const tls = errors.find(
    (e) => e.code === 'EPROTO' || /\bSSL routines\b|wrong version number/i.test(e.message ?? ''),
  );
  if (tls)
    return `TLS handshake failed (${tls.message?.replace(/^Connection error: /, '')}): is kafka.ssl.enabled right for this listener?`;
  return undefined;
}

/**
 * Connects to each seed broker in turn, once, with the configured TLS and SASL. Throws
 * KafkaUnusableError at the first broker that refuses the certificate or the credentials; returns
 * when one accepts, or when none answered for another reason (the clients retry those as usual).
 */
export async function checkKafkaConnection(cfg: KafkaSettings, log: Logger): Promise<void> {
  for (const broker of cfg.brokers) {
    const kafka = new Kafka({
      clientId: `${cfg.clientId}-check`,
      ...kafkaConnection({ ...cfg, brokers: [broker] }),
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    });
    const admin = kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      return;
    } catch (err) {
      const cause = fatalConnectionCause(err, cfg);
      if (cause)
        throw new KafkaUnusableError(scrubSecrets(`Kafka broker ${broker}: ${cause}`, [cfg.sasl.password]));
      log.warn(
        { broker, err: scrubSecrets((err as Error).message, [cfg.sasl.password]) },
        'kafka broker not answering yet; start-up goes on retrying',
      );
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}
