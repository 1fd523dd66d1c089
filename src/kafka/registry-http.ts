// How fairflag talks HTTP to the schema registry: the TLS trust (registry.caFile), the credentials
// (basic auth or a bearer token, from the config, the environment, a file or the URL) and the
// time limit, the same for the registry client library and fairflag's own requests. And which
// failures cannot get better by retrying (a certificate not trusted, credentials refused).
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Config } from '../../config/schema.js';
import { readSecretFile, redactUrl } from '../runtime/secrets.js';

type RegistrySettings = Config['registry'];

/** The registry cannot be used as configured: retrying would not help (exit code 3 at start). */
export class RegistryUnusableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryUnusableError';
  }
}

/** The registry's base URL without credentials (those go in a header), and without a trailing slash. */
export function registryBase(cfg: RegistrySettings): string {
  const u = new URL(cfg.url);
  u.username = '';
  u.password = '';
  return u.toString().replace(/\/+$/, '');
}

/** The registry's URL as it may be shown: without a password. */
export const shownRegistryUrl = (cfg: RegistrySettings): string => redactUrl(cfg.url);

/**
 * The Authorization header, if any: a bearer token (the token file is read again each time, so
 * a renewed token is used at once), else basic auth from the settings or from the URL.
 */
export function registryAuthorization(cfg: RegistrySettings): string | undefined {
  if (cfg.tokenFile) return `Bearer ${readSecretFile(cfg.tokenFile, 'registry.tokenFile')}`;
  if (cfg.token) return `Bearer ${cfg.token}`;
  const u = new URL(cfg.url);
  const user = cfg.username ?? (u.username ? decodeURIComponent(u.username) : undefined);
  const password = cfg.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  if (user === undefined) return undefined;
  return `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}`;
}

const agents = new WeakMap<RegistrySettings, HttpsAgent | undefined>();

/** For https with a private CA: an agent that trusts it (one per config, connections kept alive). */
export function registryAgent(cfg: RegistrySettings): HttpsAgent | undefined {
  if (agents.has(cfg)) return agents.get(cfg);
  let agent: HttpsAgent | undefined;
  if (cfg.caFile && new URL(cfg.url).protocol === 'https:') {
    let ca: string;
    try {
      ca = readFileSync(cfg.caFile, 'utf8');
    } catch (err) {
      throw new RegistryUnusableError(
        `registry.caFile: cannot read ${cfg.caFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
    agent = new HttpsAgent({ ca, keepAlive: true });
  }
  agents.set(cfg, agent);
  return agent;
}

/** One GET to the registry, within `registry.requestTimeout`: the status and the body as text. */
/** A registry request (a GET unless `init` says otherwise) and its answer, within a time limit. */
export async function registryRequest(
  cfg: RegistrySettings,
  path: string,
  init: { method?: string; body?: unknown } = {},
  timeoutMs = cfg.requestTimeout,
): Promise<{ status: number; body: string }> {
  const url = new URL(registryBase(cfg) + path);
  const headers: Record<string, string> = {
    accept: 'application/vnd.schemaregistry.v1+json, application/json',
    ...(init.body !== undefined && { 'content-type': 'application/vnd.schemaregistry.v1+json' }),
  };
  const auth = registryAuthorization(cfg);
  if (auth) headers['authorization'] = auth;
  const agent = registryAgent(cfg);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers, ...(agent && { agent }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    // a whole-request limit (connect, answer and body): a stalled registry must not hold a batch
    const timer = setTimeout(() => {
      const err = new Error(`no complete answer within ${timeoutMs} ms (timeout)`);
      err.name = 'TimeoutError';
      req.destroy(err);
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(init.body === undefined ? undefined : JSON.stringify(init.body));
  });
}

export const registryGet = (cfg: RegistrySettings, path: string, timeoutMs = cfg.requestTimeout) =>
  registryRequest(cfg, path, {}, timeoutMs);

const CERTIFICATE_CODES =
  /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_\w+|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/**
 * Asks the registry once whether it can be used at all. Throws RegistryUnusableError, naming the
 * registry and the cause, for what retrying cannot mend: a certificate not trusted, credentials
 * refused (401, 403). Any other failure (not answering, 5xx) is thrown as it is, to be retried.
 */
export async function checkRegistry(cfg: RegistrySettings): Promise<void> {
  const where = `schema registry at ${shownRegistryUrl(cfg)}`;
  let res: { status: number; body: string };
  try {
    res = await registryGet(cfg, '/subjects');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (CERTIFICATE_CODES.test(e.code ?? ''))
      throw new RegistryUnusableError(
        `${where}: TLS: its certificate is not accepted (${e.code}: ${e.message})${cfg.caFile ? ` with registry.caFile ${cfg.caFile}` : '; set registry.caFile to the CA that signed it'}`,
        { cause: err },
      );
    if (e.code === 'EPROTO')
      throw new RegistryUnusableError(`${where}: TLS handshake failed (${e.message}): http or https?`, {
        cause: err,
      });
    throw err;
  }
  if (res.status === 401 || res.status === 403) {
    const how = registryAuthorization(cfg)?.split(' ')[0];
    throw new RegistryUnusableError(
      `${where}: credentials refused (HTTP ${res.status}${res.status === 401 ? ' Unauthorized' : ' Forbidden'}; ${how ? `${how.toLowerCase()} auth${cfg.username ? ` as user "${cfg.username}"` : ''} sent` : 'no credentials configured'})`,
    );
  }
  if (res.status >= 500) throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 200)}`);
}
