// Pipeline benchmark (`npm run bench`): against the real local stack, measures in one run the limit
// (a bare kafkajs consumer that only reads and decodes, then the same with @platformatic/kafka, the
// alternative client; bench/bare-consumers.ts) and fairflag over the same messages: events per
// second, latency from produce to features written and to flags on the topic (at full speed and
// at a steady offered rate), Redis memory per active account, Redis calls per event, RSS.
// Writes bench/results/pipeline-<ISO time>.json and prints a table. Not a test: figures only.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import type { ActivityEvent, Family } from '../src/domain/events.js';
import { Codec, topicOf } from '../src/kafka/codec.js';
import { Processor, ensureTopics, kafkaClient, type BatchTiming } from '../src/kafka/processor.js';
import { loadConfig, type LoadedConfig } from '../src/runtime/config-loader.js';
import { createLogger } from '../src/runtime/logger.js';
import { PROJECT_ROOT } from '../src/runtime/project.js';
import { bareKafkajs, barePlatformaticKafka } from './bare-consumers.js';
import { cpuMark, cpuSplit } from './cpu-split.js';
import { PhaseProfile } from './profile.js';
import { judgeTargets } from './targets.js';
import { workload } from './workload.js';

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string', default: '20000' },
    events: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '2000' },
    steady: { type: 'string', default: '30' },
    partitions: { type: 'string', default: '3' },
    concurrency: { type: 'string' },
    instances: { type: 'string', default: '1' },
    'redis-cluster': { type: 'boolean', default: false },
    profile: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(`npm run bench -- [--accounts 20000] [--events 200000] [--rate 2000] [--steady 30]
                     [--partitions 3] [--concurrency N] [--instances 1] [--redis-cluster] [--profile full|steady]
Needs the local stack (npm run bench starts it). --redis-cluster uses scripts/stack.sh redis-cluster.
--concurrency: batches in flight per consumer (kafka.partitionsConsumedConcurrently); the config's
               value when not given.
--profile:     CPU and allocation profiles of one phase (full speed or steady) of this process (the
               processor), written next to the results file and summed up by package and function.
               Profiling slows the processor: its figures show where time goes, not how fast it is.
               FAIRFLAG_PROFILE_SURVIVORS=1: count only allocations that outlive a scavenge.\n`);
  process.exit(0);
}
const num = (name: keyof typeof args) => {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v <= 0)
    throw new Error(`--${name}: expected a positive number, got ${args[name]}`);
  return v;
};
const P = {
  accounts: num('accounts'),
  events: num('events'),
  rate: num('rate'),
  steadySeconds: num('steady'),
  partitions: num('partitions'),
  concurrency: args.concurrency === undefined ? undefined : num('concurrency'),
  instances: num('instances'),
  redisCluster: args['redis-cluster'],
  profile: args.profile,
};
if (P.profile !== undefined && P.profile !== 'full' && P.profile !== 'steady') {
  throw new Error(`--profile: expected full or steady, got ${P.profile}`);
}

const say = (s: string) => process.stderr.write(`${s}\n`);
const percentile = (xs: number[], p: number) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const pct = (xs: number[]) => ({
  n: xs.length,
  p50: percentile(xs, 50),
  p95: percentile(xs, 95),
  p99: percentile(xs, 99),
});
const git = (...a: string[]) => execFileSync('git', a, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
const stack = (...a: string[]) =>
  execFileSync('bash', [join(PROJECT_ROOT, 'scripts/stack.sh'), ...a], { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A fresh redis-server of our own, so used_memory measures fairflag's keys and nothing else. */
async function ownRedis(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fairflag-bench-redis-'));
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; ; i++) {
    const pong = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim();
    if (pong === 'PONG') break;
    if (i > 100) throw new Error('own redis-server did not start');
    await sleep(50);
  }
  // never leave it behind, whatever way the benchmark ends
  process.on('exit', () => proc.kill());
  return { url: `redis://127.0.0.1:${port}`, proc };
}

const infoNumber = (text: string, field: string) =>
  Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
const evalCalls = (text: string) =>
  [...text.matchAll(/^cmdstat_(?:evalsha|eval|hincrby):calls=(\d+)/gm)].reduce((t, m) => t + Number(m[1]), 0);

async function redisNodes(loaded: LoadedConfig): Promise<Redis[]> {
  const c = loaded.config.redis;
  const urls = c.clusterNodes.length ? c.clusterNodes.map((n) => `redis://${n}`) : [c.url];
  return urls.map((u) => new Redis(u));
}
async function sumInfo(nodes: Redis[], section: string, read: (t: string) => number): Promise<number> {
  let total = 0;
  for (const n of nodes) total += read(await n.info(section));
  return total;
}

/** A service's pid from the local stack's pid file (scripts/stack.sh), if it has one. */
function stackPid(service: string): number | undefined {
  const file = join(PROJECT_ROOT, '.stack/run', `${service}.pid`);
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) || undefined : undefined;
}

async function main(): Promise<void> {
  const started = new Date();
  const commit = git('rev-parse', 'HEAD');
  const dirty = git('status', '--porcelain', '--', 'src', 'processors', 'config', 'bench/*.ts').length > 0;
  say('local stack: ' + stack('up').trim().split('\n').join('; '));
  let own: { url: string; proc: ChildProcess } | undefined;
  let clusterNodes = '';
  if (P.redisCluster) {
    say(stack('redis-cluster', 'up').trim());
    clusterNodes = stack('redis-cluster', 'env').trim().split('=')[1]!;
  } else own = await ownRedis();
  const stackEnv = Object.fromEntries(
    stack('env')
      .trim()
      .split('\n')
      .map((l) => l.replace(/^export /, '').split('=') as [string, string]),
  );
  const id = Date.now().toString(36);
  const topics = [
    'login',
    'ip',
    'paymentMethod',
    'contract',
    'account',
    'reviewOutcomes',
    'flags',
    'deadLetter',
  ];
  const configOverrides = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k.startsWith('FAIRFLAG__')),
  );
  const loaded = loadConfig({
    env: {
      ...stackEnv,
      ...(own ? { FAIRFLAG_REDIS_URL: own.url } : { FAIRFLAG_REDIS_CLUSTER_NODES: clusterNodes }),
      FAIRFLAG_GROUP_ID: `bench-${id}`,
      FAIRFLAG_REDIS_KEY_PREFIX: `bench${id}`,
      FAIRFLAG_HTTP_PORT: '0',
      FAIRFLAG__topics__partitions: String(P.partitions),
      ...(P.concurrency && { FAIRFLAG__kafka__partitionsConsumedConcurrently: String(P.concurrency) }),
      ...Object.fromEntries(topics.map((t) => [`FAIRFLAG__topics__${t}`, `bench-${id}.${t}`])),
      // any other setting to try, e.g. FAIRFLAG__kafka__maxBytesPerPartition=16384 npm run bench
      ...configOverrides,
    },
  });
  const { config } = loaded;
  const log = createLogger('bench');
  log.level = 'error';
  const kafka = kafkaClient(config.kafka, log, '-bench');
  await ensureTopics(kafka, config.topics);
  const codec = await Codec.connect(config);
  const nodes = await redisNodes(loaded);
  if (P.redisCluster) for (const n of nodes) await n.flushall();

  // 1. the workload, produced in the registry's wire format
  const now = Date.now();
  const producer = kafka.producer();
  await producer.connect();
  const accounts = new Set<string>();
  const produce = async (events: Iterable<ActivityEvent>, chunk = 2000) => {
    let batch: ActivityEvent[] = [];
    let count = 0;
    const flush = async () => {
      const byTopic = new Map<string, { key: string; value: Buffer }[]>();
      for (const e of batch) {
        const t = topicOf(e.family, config.topics);
        byTopic.set(t, [
          ...(byTopic.get(t) ?? []),
          { key: e.event.accountId, value: await codec.encode(e.family, e.event) },
        ]);
      }
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      count += batch.length;
      batch = [];
    };
    for (const e of events) {
      accounts.add(e.event.accountId);
      if (e.family === 'contract') accounts.add(e.event.freelancerAccountId);
      batch.push(e);
      if (batch.length >= chunk) await flush();
    }
    if (batch.length) await flush();
    return count;
  };
  say(`producing ${P.events} events for ${P.accounts} accounts...`);
  const t = performance.now();
  const total = await produce(
    workload({
      accounts: P.accounts,
      events: P.events,
      from: now - 2 * 86_400_000,
      to: now - 600_000,
      seed: 1,
    }),
  );
  const produceSeconds = (performance.now() - t) / 1000;
  say(`produced ${total} in ${produceSeconds.toFixed(1)} s`);

  // 2. the limit: a bare consumer that reads and decodes the same messages
  const families: Record<string, Family> = {
    [config.topics.login]: 'login',
    [config.topics.ip]: 'ip',
    [config.topics.paymentMethod]: 'payment',
    [config.topics.contract]: 'contract',
    [config.topics.account]: 'account',
  };
  const bareRun = { families, total, codec };
  const bareRate = await bareKafkajs(kafka, {
    ...bareRun,
    groupId: `bench-bare-${id}`,
    // the same batches in flight as fairflag's consumer
    partitionsConsumedConcurrently: config.kafka.partitionsConsumedConcurrently,
  });
  say(`bare kafkajs consumer: ${Math.round(bareRate)} events/s`);
  // the same with the alternative client (issue 6), right after it over the same messages
  const barePlatformaticRate = await barePlatformaticKafka({
    ...bareRun,
    groupId: `bench-bare-platformatic-${id}`,
    brokers: config.kafka.brokers,
    clientId: `${config.kafka.clientId}-bench-platformatic`,
  });
  say(`bare @platformatic/kafka consumer: ${Math.round(barePlatformaticRate)} events/s`);

  // 3. fairflag over the same messages, from a fresh consumer group
  const memBefore = await sumInfo(nodes, 'memory', (x) => infoNumber(x, 'used_memory'));
  const callsBefore = await sumInfo(nodes, 'commandstats', evalCalls);
  // CPU spent per event by Redis (all nodes) and by this process, to see where the time goes
  const redisCpu = (x: string) =>
    Number(/^used_cpu_user:([\d.]+)/m.exec(x)?.[1]) + Number(/^used_cpu_sys:([\d.]+)/m.exec(x)?.[1]);
  const redisCpuBefore = await sumInfo(nodes, 'cpu', redisCpu);
  const nodeCpuBefore = process.cpuUsage();
  // the whole machine too: are both cores full, and who else uses them
  const pids = {
    processor: process.pid,
    redis: own?.proc.pid,
    'Kafka broker': stackPid('kafka'),
    registry: stackPid('registry'),
  };
  const machineBefore = cpuMark(pids);
  const machineBeforeAt = performance.now();
  const timings: { at: number; b: BatchTiming }[] = [];
  let rss = process.memoryUsage().rss;
  const rssTimer = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 200);
  const profile = P.profile ? new PhaseProfile() : undefined;
  if (P.profile === 'full') await profile?.start();
  const procs: Processor[] = [];
  for (let i = 0; i < P.instances; i++) {
    procs.push(
      await Processor.start({
        loaded,
        log,
        http: false,
        onBatchWritten: (b) => timings.push({ at: performance.now(), b }),
      }),
    );
  }
  const done = () => procs.reduce((n, p) => n + p.counts.processed + p.counts.deadLettered, 0);
  while (done() < total) await sleep(50);
  // from the first batch begun (batches run concurrently: the first one written is late) to the last written
  const ffStart = Math.min(...timings.map((x) => x.b.startedAt));
  const ffEnd = timings.at(-1)!.at;
  const ffRate = total / ((ffEnd - ffStart) / 1000);
  const resultBase = join(
    PROJECT_ROOT,
    'bench/results',
    `pipeline-${started.toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z`,
  );
  mkdirSync(join(PROJECT_ROOT, 'bench/results'), { recursive: true });
  let profileSummary = P.profile === 'full' ? await profile?.stop(resultBase, total) : undefined;
  const commandsSent = procs.reduce((n, p) => n + p.store.commandsSent, 0);
  const roundTrips = () => procs.reduce((n, p) => n + p.engine.roundTrips, 0);
  const fullSpeed = {
    features: pct(timings.flatMap(({ b }) => b.producedAt.map((p) => b.featuresWrittenAt - p))),
    flags: pct(timings.flatMap(({ b }) => b.flags.map((f) => f.producedAt - f.triggeredAt))),
  };
  const memAfter = await sumInfo(nodes, 'memory', (x) => infoNumber(x, 'used_memory'));
  const callsAfter = await sumInfo(nodes, 'commandstats', evalCalls);
  const redisCpuSeconds = (await sumInfo(nodes, 'cpu', redisCpu)) - redisCpuBefore;
  const nodeCpu = process.cpuUsage(nodeCpuBefore);
  const machine = cpuSplit(machineBefore, cpuMark(pids), (performance.now() - machineBeforeAt) / 1000, total);
  say(
    `fairflag: ${Math.round(ffRate)} events/s (${((ffRate / bareRate) * 100).toFixed(0)}% of the bare consumer)`,
  );

  // 4. a steady offered rate: latency when keeping up
  const steadyFrom = Date.now();
  const steadyTimings = timings.length;
  const steadyEvents = workload({
    accounts: P.accounts,
    events: Math.round(P.rate * P.steadySeconds),
    from: now,
    to: now + P.steadySeconds * 1000,
    seed: 2,
  });
  say(`steady: ${P.rate} events/s for ${P.steadySeconds} s...`);
  // what stalls the one thread while it keeps up: GC pauses and event-loop delay (a p99 latency
  // is made of such stalls more than of the work per event)
  const gcPauses = { minor: [] as number[], major: [] as number[] };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      const ms = Math.round(e.duration * 10) / 10;
      (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR ? gcPauses.major : gcPauses.minor).push(ms);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  if (P.profile === 'steady') await profile?.start();
  const tick = 50;
  const perTick = Math.max(1, Math.round((P.rate * tick) / 1000));
  let offered = 0;
  const steadyStart = performance.now();
  for (;;) {
    const chunk: ActivityEvent[] = [];
    for (let i = 0; i < perTick; i++) {
      const n = steadyEvents.next();
      if (n.done) break;
      chunk.push(n.value);
    }
    if (!chunk.length) break;
    offered += await produce(chunk, perTick);
    const due = steadyStart + (offered / P.rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
  }
  const offeredRate = offered / ((performance.now() - steadyStart) / 1000);
  while (done() < total + offered) await sleep(50);
  if (P.profile === 'steady') profileSummary = await profile?.stop(resultBase, offered);
  gcObserver.disconnect();
  loopDelay.disable();
  const sum = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0));
  const mainThread = {
    gcMinor: { count: gcPauses.minor.length, totalMs: sum(gcPauses.minor), ...pct(gcPauses.minor) },
    gcMajor: { count: gcPauses.major.length, totalMs: sum(gcPauses.major), ...pct(gcPauses.major) },
    gcMaxMs: Math.round(Math.max(0, ...gcPauses.minor, ...gcPauses.major)),
    eventLoopDelayMs: {
      p50: Math.round(loopDelay.percentile(50) / 1e6),
      p99: Math.round(loopDelay.percentile(99) / 1e6),
      max: Math.round(loopDelay.max / 1e6),
    },
  };
  const steady = timings.slice(steadyTimings).map((x) => x.b);
  const steadyLatency = {
    features: pct(
      steady.flatMap((b) => b.producedAt.filter((p) => p >= steadyFrom).map((p) => b.featuresWrittenAt - p)),
    ),
    flags: pct(
      steady.flatMap((b) =>
        b.flags.filter((f) => f.triggeredAt >= steadyFrom).map((f) => f.producedAt - f.triggeredAt),
      ),
    ),
    // the features latency in two parts: waiting for a batch to begin (in Kafka, or for the fetch
    // before it to be done: kafkajs fetches again only when every batch of a fetch is), and the
    // batch's own work up to its features being written
    waitForBatch: pct(
      steady.flatMap((b) => b.producedAt.filter((p) => p >= steadyFrom).map((p) => b.begunAt - p)),
    ),
    inBatch: pct(
      steady.flatMap((b) =>
        b.producedAt.filter((p) => p >= steadyFrom).map(() => b.featuresWrittenAt - b.begunAt),
      ),
    ),
  };
  clearInterval(rssTimer);
  for (const p of procs) await p.stop();
  await producer.disconnect();
  for (const n of nodes) n.disconnect();
  if (own) own.proc.kill();
  if (P.redisCluster) stack('redis-cluster', 'down');

  const result = {
    benchmark: 'pipeline',
    date: started.toISOString(),
    machine: {
      cores: cpus().length,
      cpu: cpus()[0]?.model,
      node: process.version,
      // V8 flags (a young generation of another size, say) change the processor's CPU per event
      nodeFlags: [
        ...process.execArgv.filter((a) => a.startsWith('--max-')),
        process.env.NODE_OPTIONS ?? '',
      ].filter(Boolean),
      loadAverageAtEnd: loadavg(),
    },
    git: { commit, dirty },
    params: {
      ...P,
      concurrency: config.kafka.partitionsConsumedConcurrently,
      config: loaded.version,
      configOverrides,
      workload: 'bench/workload.ts seed 1 (bulk) and 2 (steady)',
    },
    figures: {
      events: total,
      activeAccounts: accounts.size,
      produceSeconds,
      // kafkajs, the client fairflag uses; ratioToBare is relative to it
      bareConsumerEventsPerSecond: Math.round(bareRate),
      bareConsumerEventsPerSecondByClient: {
        kafkajs: Math.round(bareRate),
        platformaticKafka: Math.round(barePlatformaticRate),
      },
      fairflagEventsPerSecond: Math.round(ffRate),
      ratioToBare: Math.round((ffRate / bareRate) * 1000) / 1000,
      perInstanceProcessed: procs.map((p) => p.counts.processed + p.counts.deadLettered),
      flagsEmitted: procs.reduce((n, p) => n + p.counts.flagsEmitted, 0),
      deadLettered: procs.reduce((n, p) => n + p.counts.deadLettered, 0),
      storeCallsPerEvent: Math.round((commandsSent / total) * 100) / 100,
      roundTripsPerEvent: Math.round((roundTrips() / (total + offered)) * 100) / 100,
      redisScriptCallsPerEvent: Math.round(((callsAfter - callsBefore) / total) * 100) / 100,
      redisBytesPerActiveAccount: Math.round((memAfter - memBefore) / accounts.size),
      // includes the wait for the last batch and the bench's own bookkeeping; an upper bound
      cpuMicrosecondsPerEvent: {
        redis: Math.round((redisCpuSeconds * 1e6) / total),
        processor: Math.round((nodeCpu.user + nodeCpu.system) / total),
      },
      // from /proc, over the same phase (start of the processors to the last batch seen done)
      machineAtFullSpeed: machine ?? null,
      peakRssMiB: Math.round(rss / 1048576),
      latencyAtFullSpeedMs: fullSpeed,
      steady: {
        offeredEventsPerSecond: Math.round(offeredRate),
        events: offered,
        latencyMs: steadyLatency,
        mainThread,
      },
    },
  };
  const f = result.figures;
  const targets = judgeTargets({
    fairflagEventsPerSecond: f.fairflagEventsPerSecond,
    ratioToBare: f.ratioToBare,
    steadyOfferedPerSecond: f.steady.offeredEventsPerSecond,
    steadyFeaturesP99Ms: steadyLatency.features.p99,
    steadyFlagsP99Ms: steadyLatency.flags.p99,
    roundTripsPerEvent: f.roundTripsPerEvent,
    redisBytesPerActiveAccount: f.redisBytesPerActiveAccount,
  });
  const file = `${resultBase}.json`;
  writeFileSync(file, JSON.stringify({ ...result, targets }, null, 2) + '\n');
  const ms = (x: number | null) => (x === null ? 'n/a' : `${x} ms`);
  const rows: [string, string][] = [
    ['machine', `${result.machine.cores} cores, ${result.machine.cpu}, ${process.version}`],
    ['events / active accounts', `${f.events} / ${f.activeAccounts}`],
    ['bare kafkajs consumer (read + decode)', `${f.bareConsumerEventsPerSecond} events/s`],
    [
      'bare @platformatic/kafka consumer (read + decode)',
      `${f.bareConsumerEventsPerSecondByClient.platformaticKafka} events/s`,
    ],
    [
      `fairflag, ${P.instances} instance(s)`,
      `${f.fairflagEventsPerSecond} events/s (${Math.round(f.ratioToBare * 100)}% of bare)`,
    ],
    ['events per instance (full speed + steady)', f.perInstanceProcessed.join(', ')],
    [
      'produce -> features written, full speed p50/p95/p99',
      `${ms(fullSpeed.features.p50)} / ${ms(fullSpeed.features.p95)} / ${ms(fullSpeed.features.p99)}`,
    ],
    [
      `steady ${f.steady.offeredEventsPerSecond} ev/s: produce -> features p50/p95/p99`,
      `${ms(steadyLatency.features.p50)} / ${ms(steadyLatency.features.p95)} / ${ms(steadyLatency.features.p99)}`,
    ],
    [
      'steady: of that, waiting for the batch / in the batch p50/p99',
      `${ms(steadyLatency.waitForBatch.p50)} / ${ms(steadyLatency.waitForBatch.p99)}, ${ms(steadyLatency.inBatch.p50)} / ${ms(steadyLatency.inBatch.p99)}`,
    ],
    [
      `steady: produce -> flag on topic p50/p95/p99 (${steadyLatency.flags.n} flags)`,
      `${ms(steadyLatency.flags.p50)} / ${ms(steadyLatency.flags.p95)} / ${ms(steadyLatency.flags.p99)}`,
    ],
    [
      'steady: GC pauses minor / major (count, total, max)',
      `${mainThread.gcMinor.count}, ${mainThread.gcMinor.totalMs} ms / ${mainThread.gcMajor.count}, ${mainThread.gcMajor.totalMs} ms; max ${mainThread.gcMaxMs} ms`,
    ],
    [
      'steady: event-loop delay p50 / p99 / max',
      `${mainThread.eventLoopDelayMs.p50} / ${mainThread.eventLoopDelayMs.p99} / ${mainThread.eventLoopDelayMs.max} ms`,
    ],
    ['Redis memory per active account', `${f.redisBytesPerActiveAccount} bytes`],
    [
      'CPU per event at full speed: Redis / processor',
      `${f.cpuMicrosecondsPerEvent.redis} µs / ${f.cpuMicrosecondsPerEvent.processor} µs`,
    ],
    ...(machine
      ? ([
          [
            `machine at full speed: cores busy of ${result.machine.cores}`,
            `${machine.coresBusy} (CPU µs/event: ${Object.entries(machine.microsecondsPerEvent)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')})`,
          ],
        ] as [string, string][])
      : []),
    ['Redis round trips per event (waits; calls pipelined)', String(f.roundTripsPerEvent)],
    ['Redis script calls per event', String(f.storeCallsPerEvent)],
    ['peak RSS (processor in the bench process)', `${f.peakRssMiB} MiB`],
    ['flags emitted / dead-lettered', `${f.flagsEmitted} / ${f.deadLettered}`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n\ntargets (issue 6):\n');
  const tw = Math.max(...targets.map((t) => t.target.length));
  process.stdout.write(
    targets.map((t) => `${t.met ? 'met   ' : 'missed'}  ${t.target.padEnd(tw)}  ${t.measured}`).join('\n') +
      `\n\nwritten to ${file}\n`,
  );
  if (profileSummary) process.stdout.write(`\n${profileSummary.join('\n')}\n`);
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
