// Processor memory benchmark (`npm run bench:memory`): the processor as a process of its own, the
// built dist/src/cli.js as the container starts it, working through a backlog from a population
// larger than its account cache. Its resident memory is read from /proc while it works (VmRSS,
// and VmHWM, the kernel's own peak), so nothing of the benchmark's workload is counted, which the
// pipeline benchmark cannot avoid (its processors run inside it). Not a test: figures only.
//
//   npm run bench:memory                                   # 100,000 accounts, cache of 10,000
//   npm run bench:memory -- --accounts 20000 --max-accounts 100000
//
// Writes bench/results/processor-memory-<ISO time>.json.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ActivityEvent } from '../src/domain/events.js';
import { Codec } from '../src/kafka/codec.js';
import { RedisStateBackend } from '../src/features/state-backend.js';
import { connectRedis, consumedTopics, ensureTopics, kafkaClient } from '../src/kafka/processor.js';
import { loadConfig } from '../src/runtime/config-loader.js';
import { createLogger } from '../src/runtime/logger.js';
import { PROJECT_ROOT } from '../src/runtime/project.js';
import { codeUnderTest } from './code-under-test.js';
import { TOPIC_KEYS, stack, stackEnv } from './local-stack.js';
import { formatVerdicts, type TargetVerdict } from './targets.js';
import { produceEvents, touchEach, workload } from './workload.js';

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string', default: '100000' },
    events: { type: 'string', default: '200000' },
    'max-accounts': { type: 'string', default: '10000' },
    partitions: { type: 'string', default: '3' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(`npm run bench:memory -- [--accounts 100000] [--events 200000] [--max-accounts 10000]
                            [--partitions 3]
Builds dist/, produces one event for each of --accounts accounts, then the pipeline benchmark's
workload (--events over them, seed 1), to topics of its own on the local stack, starts
\`node dist/src/cli.js run\` over them with a cache of --max-accounts clean accounts
(FAIRFLAG__state__maxAccounts), and reads the process's RSS from /proc until the group has
committed every message. FAIRFLAG__* variables and NODE_OPTIONS are passed on.\n`);
  process.exit(0);
}
const num = (name: string, v: string | undefined) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: expected a positive integer, got ${v}`);
  return n;
};
const P = {
  accounts: num('accounts', args.accounts),
  events: num('events', args.events),
  maxAccounts: num('max-accounts', args['max-accounts']),
  partitions: num('partitions', args.partitions),
};

const say = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (kib: number) => Math.round(kib / 1024);

/** A /proc/<pid>/status field in KiB. */
function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** User + system CPU seconds of a process so far (/proc/<pid>/stat, in clock ticks). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

async function main(): Promise<void> {
  const started = new Date();
  say('building dist/ ...');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
  say('local stack: ' + stack('up').trim().split('\n').join('; '));
  const stackVariables = stackEnv();
  const id = Date.now().toString(36);
  const env: Record<string, string> = {
    ...stackVariables,
    FAIRFLAG_GROUP_ID: `mem-${id}`,
    FAIRFLAG_REDIS_KEY_PREFIX: `mem${id}`,
    FAIRFLAG_HTTP_PORT: '0',
    FAIRFLAG_LOG_LEVEL: 'warn',
    FAIRFLAG__topics__partitions: String(P.partitions),
    FAIRFLAG__maxmind__allowTestDatabases: 'true',
    ...Object.fromEntries(TOPIC_KEYS.map((t) => [`FAIRFLAG__topics__${t}`, `mem-${id}.${t}`])),
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('FAIRFLAG__'))),
    FAIRFLAG__state__maxAccounts: String(P.maxAccounts),
  } as Record<string, string>;
  const { config } = loadConfig({ env });
  const log = createLogger('bench');
  log.level = 'error';
  const kafka = kafkaClient(config.kafka, log, '-bench');
  await ensureTopics(kafka, config.topics);
  const codec = await Codec.connect(config);
  const producer = kafka.producer();
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();

  say(`producing ${P.events} events for ${P.accounts} accounts...`);
  const active = new Set<string>();
  const now = Date.now();
  const sink = { producer, codec, topics: config.topics };
  const each = (e: ActivityEvent) => active.add(e.event.accountId);
  // every account of the population active: one event each first, then the workload
  const from = now - 2 * 86_400_000;
  const produced =
    (await produceEvents(sink, touchEach(P.accounts, from - 60_000), { each })) +
    (await produceEvents(sink, workload({ accounts: P.accounts, events: P.events, from, to: now, seed: 1 }), {
      each,
    }));
  await producer.disconnect();
  say(`produced ${produced}; starting the processor (node dist/src/cli.js run)`);

  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/src/cli.js'), 'run'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const pid = child.pid!;
  const samples: number[] = [];
  const sampler = setInterval(() => {
    try {
      samples.push(statusKiB(pid, 'VmRSS'));
    } catch {
      // the process has gone: the loop below notices
    }
  }, 200);

  // caught up: every consumed topic-partition committed to its end
  const topics = consumedTopics(config.topics);
  const lag = async () => {
    let total = 0;
    const committed = await admin.fetchOffsets({ groupId: config.kafka.groupId, topics });
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      for (const e of ends) {
        const c = committed
          .find((t) => t.topic === topic)
          ?.partitions.find((p) => p.partition === e.partition);
        const at = c && Number(c.offset) >= 0 ? Number(c.offset) : 0;
        total += Math.max(0, Number(e.high) - at);
      }
    }
    return total;
  };
  const t0 = performance.now();
  let caughtUp: number | undefined;
  let cpuAtEnd = 0;
  let hwm = 0;
  while (caughtUp === undefined) {
    await sleep(500);
    // a V8 out-of-memory abort ends it by a signal (SIGABRT), with no exit code
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`the processor exited with ${child.exitCode ?? child.signalCode}`);
    const left = await lag();
    if (left === 0) {
      caughtUp = performance.now();
      cpuAtEnd = cpuSeconds(pid);
      hwm = statusKiB(pid, 'VmHWM');
    } else if (performance.now() - t0 > 30 * 60_000) throw new Error('not caught up in 30 minutes');
    else say(`  ${left} messages left, RSS ${mib(samples.at(-1) ?? 0)} MiB`);
  }
  clearInterval(sampler);
  child.kill('SIGTERM');
  const code = await exited;
  await admin.disconnect();
  // the stack's Redis is shared with the tests: leave nothing behind
  const redis = connectRedis(config.redis);
  await redis.connect();
  const removed = await new RedisStateBackend(redis, config.redis.keyPrefix).dropNamespace();
  redis.disconnect();
  say(`removed the run's ${removed} Redis keys`);

  const seconds = (caughtUp - t0) / 1000;
  const sorted = [...samples].sort((a, b) => a - b);
  const figures = {
    events: produced,
    activeAccounts: active.size,
    maxAccounts: P.maxAccounts,
    secondsToCaughtUp: Math.round(seconds * 10) / 10,
    eventsPerSecond: Math.round(produced / seconds),
    processorCpuMicrosecondsPerEvent: Math.round((cpuAtEnd * 1e6) / produced),
    peakRssMiB: mib(hwm),
    rssMiB: { p50: mib(sorted[Math.floor(sorted.length / 2)] ?? 0), max: mib(sorted.at(-1) ?? 0) },
    exitCode: code,
  };
  const judged = P.maxAccounts <= 10_000 && active.size >= 95_000;
  const targets: TargetVerdict[] = [
    {
      target: 'cache of 10,000 accounts over 100,000 active: peak RSS <= 400 MiB',
      measured: `${figures.peakRssMiB} MiB (the processor's own VmHWM; cache ${P.maxAccounts}, ${active.size} accounts active, ${figures.eventsPerSecond} ev/s including start-up)`,
      judged,
      met: judged && figures.peakRssMiB <= 400,
    },
  ];
  const result = {
    benchmark: 'processor-memory',
    date: started.toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version },
    git: codeUnderTest(),
    params: {
      ...P,
      overrides: Object.keys(env).filter((k) => k.startsWith('FAIRFLAG__')),
      nodeOptions: process.env['NODE_OPTIONS'] ?? '',
    },
    figures,
    targets,
  };
  const dir = join(PROJECT_ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(
    dir,
    `processor-memory-${started
      .toISOString()
      .replace(/[:.]/g, '-')
      .replace(/-\d+Z$/, 'Z')}.json`,
  );
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    [
      `processor (own process): ${produced} events over ${active.size} accounts, cache ${P.maxAccounts}`,
      `caught up in ${figures.secondsToCaughtUp} s (${figures.eventsPerSecond} ev/s, start-up included), ${figures.processorCpuMicrosecondsPerEvent} µs CPU per event`,
      `peak RSS (VmHWM) ${figures.peakRssMiB} MiB; sampled RSS p50 ${figures.rssMiB.p50} MiB`,
      '',
      ...formatVerdicts(targets),
      '',
      `written to ${file}`,
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
