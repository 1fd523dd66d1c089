// What a config reload may not change: the connections and topics a running processor opened at
// start. Applying the rest while these silently kept their old values would make the logged config
// a lie, so a reload that changes any of them is rejected whole.
import stringify from 'safe-stable-stringify';
import type { Config } from '../../config/schema.js';

/** Sections read once at start (clients, topics, the HTTP server, the MaxMind readers). */
export const START_ONLY_SECTIONS = ['kafka', 'registry', 'redis', 'topics', 'http', 'maxmind'] as const;

/** Every setting of a start-only section that differs, as "path: was X, now Y". */
export function startOnlyChanges(running: Config, next: Config): string[] {
  const out: string[] = [];
  const walk = (path: string, a: unknown, b: unknown) => {
    if (isTree(a) && isTree(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(`${path}.${k}`, a[k], b[k]);
    } else if (stringify(a) !== stringify(b)) {
      // a URL may carry a password, and credentials (SASL, TLS keys) never go to the log
      out.push(
        SECRET.test(path)
          ? `${path}: changed`
          : `${path}: was ${stringify(a) ?? 'unset'}, now ${stringify(b) ?? 'unset'}`,
      );
    }
  };
  for (const s of START_ONLY_SECTIONS) walk(s, running[s], next[s]);
  return out;
}

const SECRET = /url|pass|secret|token|key|cert|sasl|ssl|tls|auth/i;

function isTree(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
