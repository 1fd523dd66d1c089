// /livez, /readyz and /metrics on one small HTTP server.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<boolean>;
}

export async function readiness(
  checks: ReadinessCheck[],
): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
  const results = await Promise.all(
    checks.map(async (c) => {
      try {
        return [c.name, await withTimeout(c.check(), 2000)] as const;
      } catch {
        return [c.name, false] as const;
      }
    }),
  );
  return { ready: results.every(([, ok]) => ok), checks: Object.fromEntries(results) };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref()),
  ]);
}

export function startHealthServer(
  port: number,
  host: string,
  registry: Registry,
  checks: ReadinessCheck[],
  liveness: () => { live: boolean; reason?: string } = () => ({ live: true }),
): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/livez') {
      const l = liveness();
      return send(l.live ? 200 : 503, JSON.stringify(l));
    }
    if (path === '/readyz') {
      readiness(checks).then(
        (r) => send(r.ready ? 200 : 503, JSON.stringify(r)),
        (err: Error) => send(503, JSON.stringify({ ready: false, error: err.message })),
      );
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => send(200, text, registry.contentType),
        (err: Error) => send(500, err.message, 'text/plain'),
      );
      return;
    }
    send(404, '{"error":"not found: try /livez, /readyz or /metrics"}');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
