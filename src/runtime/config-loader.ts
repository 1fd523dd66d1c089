// Loads config/default.yaml, then an environment file, then environment variables; validates the
// result and names every problem by its path. A config that fails validation is never used.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, type Stats } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import stringify from 'safe-stable-stringify';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from '../../config/schema.js';
import { unreachableSignals } from '../domain/reachability.js';
import { enabledSignals, signalSettings } from '../engine/policy.js';
import { PROJECT_ROOT } from './project.js';

export const DEFAULT_CONFIG_FILE = join(PROJECT_ROOT, 'config', 'default.yaml');

export interface LoadedConfig {
  config: Config;
  /** Hash of the policy sections: stamped on flags, logged on reload. */
  version: string;
  sources: string[];
  /** Valid but probably not meant: every enabled signal that can never reach review, and why. */
  warnings: string[];
}

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    readonly sources: string[],
  ) {
    super(`invalid configuration (${sources.join(' + ')}):\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** An environment-specific file merged over the defaults; several are merged in order. */
  file?: string | readonly string[] | undefined;
  env?: NodeJS.ProcessEnv;
  /** Replaces default.yaml (for diff: compare two complete configs). */
  baseFile?: string;
  /** Told the warnings of every config loaded with these options (at start and on each reload). */
  onWarnings?: (warnings: string[]) => void;
  /** Settings applied last, over file and environment (sweep tries one value after another). */
  settings?: { path: string[]; value: unknown }[];
}

type Tree = Record<string, unknown>;

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const base = opts.baseFile ?? DEFAULT_CONFIG_FILE;
  const sources = [base];
  let tree = readYaml(base, sources);
  const given = opts.file ?? env['FAIRFLAG_CONFIG'];
  for (const file of typeof given === 'string' ? [given] : (given ?? [])) {
    if (!file) continue;
    sources.push(file);
    tree = deepMerge(tree, readYaml(file, sources));
  }
  const fromEnv = envOverrides(env);
  if (fromEnv.length) {
    sources.push(`env (${fromEnv.map(([name]) => name).join(', ')})`);
    for (const [, path, value] of fromEnv) setPath(tree, path, value);
  }
  for (const { path, value } of opts.settings ?? []) {
    sources.push(`${path.join('.')}=${JSON.stringify(value)}`);
    setPath(tree, path, value);
  }
  const loaded = validateConfig(tree, sources);
  if (loaded.warnings.length) opts.onWarnings?.(loaded.warnings);
  return loaded;
}

export function validateConfig(tree: unknown, sources: string[]): LoadedConfig {
  const result = configSchema.safeParse(tree, { reportInput: true });
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues), sources);
  const config = result.data;
  for (const key of ['city', 'asn', 'anonymousIp', 'connectionType'] as const) {
    const p = config.maxmind[key];
    if (p && !isAbsolute(p)) config.maxmind[key] = join(PROJECT_ROOT, p);
  }
  const warnings = unreachableSignals(signalSettings(enabledSignals(config)), config).map(
    (u) => `signals.${u.signalId}: can never reach review: ${u.reason}`,
  );
  return { config, version: configVersion(config), sources, warnings };
}

/** Only the policy counts: moving a broker does not change what a flag means. */
export function configVersion(c: Config): string {
  const policy = {
    features: c.features,
    signals: c.signals,
    mitigations: c.mitigations,
    review: c.review,
    queues: c.queues,
  };
  return 'cfg-' + createHash('sha256').update(stringify(policy)).digest('hex').slice(0, 12);
}

export function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(`${path ? `${path}.` : ''}${key}: unknown setting`);
      continue;
    }
    const input = (issue as { input?: unknown }).input;
    // safe-stable-stringify: a YAML alias can make a node contain itself, which JSON.stringify throws on
    const got = input === undefined ? 'nothing' : (stringify(input) ?? String(input));
    out.push(`${path || '(root)'}: ${issue.message}, got ${got}`);
  }
  return out;
}

/** A config file larger than this is refused before it is read (a config is a few KiB). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

function readYaml(file: string, sources: string[]): Tree {
  let text: string;
  try {
    // /dev/zero, a FIFO or a directory would be read until memory runs out, or hang
    const st = statSync(file);
    if (!st.isFile()) throw new ConfigError([`${file}: not a regular file (${fileKind(st)})`], sources);
    if (st.size > MAX_CONFIG_FILE_BYTES)
      throw new ConfigError(
        [`${file}: ${st.size} bytes, more than a config file may have (${MAX_CONFIG_FILE_BYTES})`],
        sources,
      );
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      [`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`],
      sources,
    );
  }
  try {
    const doc = parseYaml(text) as unknown;
    if (doc === null || doc === undefined) return {};
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      throw new ConfigError([`${file}: expected a YAML mapping at the top level`], sources);
    }
    return doc as Tree;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`], sources);
  }
}

/** What a file that is not a regular one is, in words. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function deepMerge(a: Tree, b: Tree): Tree {
  const out: Tree = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = isTree(cur) && isTree(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  path.slice(0, -1).forEach((k) => {
    if (!isTree(node[k])) node[k] = {};
    node = node[k] as Tree;
  });
  node[path[path.length - 1]!] = value;
}

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Named variables for what operators set per environment; FAIRFLAG__a__b=v for anything else. */
function envOverrides(env: NodeJS.ProcessEnv): [string, string[], unknown][] {
  const out: [string, string[], unknown][] = [];
  const named: [string, string[], (v: string) => unknown][] = [
    ['FAIRFLAG_KAFKA_BROKERS', ['kafka', 'brokers'], list],
    ['FAIRFLAG_GROUP_ID', ['kafka', 'groupId'], String],
    ['FAIRFLAG_REGISTRY_URL', ['registry', 'url'], String],
    ['FAIRFLAG_REDIS_URL', ['redis', 'url'], String],
    ['FAIRFLAG_REDIS_CLUSTER_NODES', ['redis', 'clusterNodes'], list],
    ['FAIRFLAG_REDIS_KEY_PREFIX', ['redis', 'keyPrefix'], String],
    ['FAIRFLAG_HTTP_PORT', ['http', 'port'], (v) => parseYaml(v) as unknown],
    ['FAIRFLAG_HTTP_HOST', ['http', 'host'], String],
  ];
  for (const [name, path, conv] of named) {
    const v = env[name];
    if (v !== undefined && v !== '') out.push([name, path, conv(v)]);
  }
  const dir = env['FAIRFLAG_MAXMIND_DIR'];
  if (dir) {
    const files = {
      city: 'GeoIP2-City.mmdb',
      asn: 'GeoLite2-ASN.mmdb',
      anonymousIp: 'GeoIP2-Anonymous-IP.mmdb',
      connectionType: 'GeoIP2-Connection-Type.mmdb',
    };
    for (const [k, f] of Object.entries(files)) {
      // the connection-type database is optional: use it only when the directory has it
      if (k === 'connectionType' && !existsSync(join(dir, f))) continue;
      out.push(['FAIRFLAG_MAXMIND_DIR', ['maxmind', k], join(dir, f)]);
    }
  }
  for (const [name, v] of Object.entries(env)) {
    if (!name.startsWith('FAIRFLAG__') || v === undefined) continue;
    out.push([name, name.slice('FAIRFLAG__'.length).split('__'), parseYaml(v) as unknown]);
  }
  return out;
}
