// A real 3-master Redis Cluster on loopback ports, for the scale-out test: redis-server in cluster
// mode, joined with redis-cli --cluster create.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface RedisCluster {
  nodes: string[];
  stop(): void;
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'fairflag-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) ports.push(await freePort());
  for (const port of ports) {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes'];
    args.push(
      '--cluster-config-file',
      join(dir, `nodes-${port}.conf`),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    );
    spawn('redis-server', [...args, '--daemonize', 'yes'], { stdio: 'ignore' });
  }
  const nodes = ports.map((p) => `127.0.0.1:${p}`);
  for (const port of ports) {
    for (let i = 0; ; i++) {
      if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG')
        break;
      if (i > 100) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const created = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'],
    {
      encoding: 'utf8',
    },
  );
  if (created.status !== 0)
    throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  for (let i = 0; ; i++) {
    const info = spawnSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], {
      encoding: 'utf8',
    }).stdout;
    if (info.includes('cluster_state:ok')) break;
    if (i > 200) throw new Error('Redis Cluster did not reach cluster_state:ok');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    nodes,
    stop() {
      for (const port of ports) spawnSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
