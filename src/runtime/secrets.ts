// Secrets in the config: where they are, how a `*File` setting becomes its value, and how a config,
// a URL or an error message is shown without them. Nothing that prints or logs a config, an
// endpoint or a connection error should do it without going through here.
import { readFileSync, statSync } from 'node:fs';
import type { Config } from '../../config/schema.js';

/** What a secret is shown as. */
export const REDACTED = '[redacted]';

/** Config paths whose values are secrets. */
export const SECRET_PATHS: readonly string[] = ['kafka.sasl.password', 'registry.password', 'registry.token'];

/** A secret file larger than this is not a password or a token (a wrong path, a device). */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Reads a secret from a file (a mounted Kubernetes or Docker secret, a file an agent keeps fresh):
 * one trailing line break is dropped, an empty or unreadable file is an error naming the file and
 * the setting.
 */
export function readSecretFile(file: string, setting: string): string {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_SECRET_FILE_BYTES) throw new Error(`${st.size} bytes, too large for a secret`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`${setting}: cannot read ${file} (${e.code ?? e.message})`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (!value) throw new Error(`${setting}: ${file} is empty`);
  return value;
}

/**
 * Fills each password from its file, when a file is given, so that the rest of the code reads one
 * setting. Token files are only checked here: they are read again whenever a token is needed.
 * Returns the problems, each naming its setting and file.
 */
export function resolveSecretFiles(config: Config): string[] {
  const problems: string[] = [];
  const attempt = (f: () => void) => {
    try {
      f();
    } catch (err) {
      problems.push((err as Error).message);
    }
  };
  const { sasl } = config.kafka;
  const { registry } = config;
  if (sasl.passwordFile)
    attempt(() => (sasl.password = readSecretFile(sasl.passwordFile!, 'kafka.sasl.passwordFile')));
  if (sasl.tokenFile && sasl.mechanism === 'oauthbearer')
    attempt(() => readSecretFile(sasl.tokenFile!, 'kafka.sasl.tokenFile'));
  if (registry.passwordFile)
    attempt(() => (registry.password = readSecretFile(registry.passwordFile!, 'registry.passwordFile')));
  if (registry.tokenFile) attempt(() => readSecretFile(registry.tokenFile!, 'registry.tokenFile'));
  return problems;
}

/** A URL with any password in it replaced (redis://:pw@host, https://user:pw@registry). */
export function redactUrl(url: string): string {
  try {
    if (!new URL(url).password) return url;
  } catch {
    // not a URL: hide whatever sits between "//" and "@", which may be credentials
    return url.replace(/\/\/[^/]*@/, `//${REDACTED}@`);
  }
  return url.replace(/^([^:]+:\/\/[^:@/]*):[^/]*@/, `$1:${REDACTED}@`);
}

/** A deep copy of a config with every secret, and every password inside a URL, replaced. */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  const tree = copy as unknown as Record<string, Record<string, unknown>>;
  for (const path of SECRET_PATHS) {
    const keys = path.split('.');
    let node: Record<string, unknown> | undefined = tree;
    for (const k of keys.slice(0, -1)) node = node?.[k] as Record<string, unknown> | undefined;
    const last = keys[keys.length - 1]!;
    if (node && node[last] !== null && node[last] !== undefined) node[last] = REDACTED;
  }
  copy.registry.url = redactUrl(copy.registry.url);
  copy.redis.url = redactUrl(copy.redis.url);
  return copy;
}

/** Whether a config path (dotted) names a secret, so that its value must never be printed. */
export function isSecretPath(path: string): boolean {
  return SECRET_PATHS.includes(path) || /(^|\.)(password|token)$/i.test(path);
}

/** Every secret value a config holds, passwords inside its URLs included. */
export function configSecrets(config: Pick<Config, 'kafka' | 'registry' | 'redis'>): string[] {
  const secrets = [config.kafka.sasl.password, config.registry.password, config.registry.token];
  for (const url of [config.registry.url, config.redis.url]) {
    try {
      const p = new URL(url).password;
      if (p) secrets.push(p, decodeURIComponent(p));
    } catch {
      // not a URL: nothing to take from it
    }
  }
  return secrets.filter((v): v is string => !!v);
}

/**
 * Replaces every given secret where it occurs in a text (an error message from a client library
 * may quote what it was given): the last line of defence for what is logged or printed.
 */
export function scrubSecrets(text: string, secrets: readonly (string | null | undefined)[]): string {
  let out = text;
  // the longest first, so that a secret containing another is replaced whole
  const sorted = secrets.filter((v): v is string => !!v && v.length >= 4).sort((a, b) => b.length - a.length);
  for (const s of sorted) out = out.split(s).join(REDACTED);
  return out;
}
