// Pipeline benchmark (`npm run bench`): against the real local stack, measures in one run the limit
// (a bare kafkajs consumer that only reads and decodes, then the same with @platformatic/kafka, the
// alternative client; bench/bare-consumers.ts) and fairflag over the same messages, in phases:
//   bulk    the whole stream at full speed, from an empty Redis: the sustained events/s
//   warm    more events at full speed, every account they touch in memory
//   cold    more at full speed through a fresh processor over the Redis that holds the state:
//           every account loaded on first touch
//   steady  a steady offered rate, then a higher one: latency from produce to features durable in
//           Redis and to flags on the topic, GC pauses, event-loop delay
// each with Redis commands, bytes and CPU per event; Redis memory per active account; RSS. Event
// time runs forward through the phases in that order (the full-speed ones at the bulk's density),
// so no phase meets an account whose later events it has already seen.
// Writes bench/results/pipeline-<ISO time>.json and prints a table. Not a test: figures only.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PerformanceObserver,
  constants as perfConstants,
  monitorEventLoopDelay,
  performance,
} from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import type { Consumer } from 'kafkajs';
import type { ActivityEvent, Family } from '../src/domain/events.js';
import { Codec } from '../src/kafka/codec.js';
import {
  Processor,
  consumedTopics,
  ensureTopics,
  kafkaClient,
  type BatchTiming,
} from '../src/kafka/processor.js';
import { loadConfig, type LoadedConfig } from '../src/runtime/config-loader.js';
import { createLogger } from '../src/runtime/logger.js';
import { PROJECT_ROOT } from '../src/runtime/project.js';
import { freePort } from '../test/support/ports.js';
import { codeUnderTest } from './code-under-test.js';
import { bareKafkajs, barePlatformaticKafka } from './bare-consumers.js';
import { cpuMark, cpuSplit, type CpuMark } from './cpu-split.js';
import { installEngineProbe } from './engine-probe.js';
import { PhaseProfile } from './profile.js';
import { TOPIC_KEYS, stack, stackEnv } from './local-stack.js';
import { formatVerdicts, judgeTargets } from './targets.js';
import { produceSteadily } from './steady-producer.js';
import { produceEvents, touchEach, workload } from './workload.js';

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string' },
    events: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '2000' },
    'high-rate': { type: 'string', default: '10000' },
    steady: { type: 'string', default: '30' },
    'cache-events': { type: 'string' },
    'max-accounts': { type: 'string' },
    'cache-bound': { type: 'boolean', default: false },
    partitions: { type: 'string', default: '3' },
    concurrency: { type: 'string' },
    instances: { type: 'string', default: '1' },
    'redis-cluster': { type: 'boolean', default: false },
    profile: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout
    .write(`npm run bench -- [--accounts 20000] [--events 200000] [--rate 2000] [--high-rate 10000]
                     [--steady 30] [--cache-events N] [--max-accounts N] [--cache-bound]
                     [--partitions 3] [--concurrency N] [--instances 1] [--redis-cluster]
                     [--profile bulk|warm|cold|steady|high] (full = bulk)
Needs the local stack (npm run bench starts it). Phases, in order: bare consumers; bulk (--events
at full speed from an empty Redis); warm and cold (--cache-events each); steady (--rate); high
(--high-rate). Then issue 16's targets, judged on the run's own figures.
--accounts:     the workload's population (20000; 100000 with --cache-bound)
--steady:       seconds of each steady phase
--high-rate:    events/s of the second steady phase; 0 skips it
--cache-events: events of the warm and of the cold phase each (default: --events); 0 skips both.
                warm: the bulk's processor, paused while they are produced, over the first
                min(accounts, max-accounts) accounts, brought into memory first when the cache is
                smaller than the population. cold: a fresh processor (same group) over the Redis
                the earlier phases wrote, all accounts.
--max-accounts: clean accounts a processor keeps in memory (FAIRFLAG__state__maxAccounts; wins over
                that variable; the config's 100000 when neither is given)
--cache-bound:  the memory target's scenario: --accounts 100000 --max-accounts 10000 unless given;
                peak RSS is judged only with a cache of at most 10000 over at least 100000 accounts,
                95% of them active in the run
--concurrency:  batches in flight per consumer (kafka.partitionsConsumedConcurrently); the config's
                value when not given.
--redis-cluster: scripts/stack.sh redis-cluster instead of a redis-server of the benchmark's own.
--profile:      CPU and allocation profiles of one phase of this process (the processor), written
                next to the results file and summed up by package and function. Profiling slows
                the processor: its figures show where time goes, not how fast it is.
                FAIRFLAG_PROFILE_SURVIVORS=1: count only allocations that outlive a scavenge.
FAIRFLAG__* variables are passed to the benchmarked processors and recorded in the results.\n`);
  process.exit(0);
}
const num = (name: string, value: string | undefined, zero = false) => {
  const v = Number(value);
  if (!Number.isFinite(v) || v < 0 || (v === 0 && !zero))
    throw new Error(`--${name}: expected a ${zero ? 'non-negative' : 'positive'} number, got ${value}`);
  return v;
};
const PHASES = ['bulk', 'warm', 'cold', 'steady', 'high'] as const;
type PhaseName = (typeof PHASES)[number];
const cacheBound = args['cache-bound'];
const events = num('events', args.events);
const maxAccountsArg = args['max-accounts'] ?? (cacheBound ? '10000' : undefined);
const P = {
  accounts: num('accounts', args.accounts ?? (cacheBound ? '100000' : '20000')),
  events,
  rate: num('rate', args.rate),
  highRate: num('high-rate', args['high-rate'], true),
  steadySeconds: num('steady', args.steady),
  cacheEvents: args['cache-events'] === undefined ? events : num('cache-events', args['cache-events'], true),
  maxAccounts: maxAccountsArg === undefined ? undefined : num('max-accounts', maxAccountsArg),
  cacheBound,
  partitions: num('partitions', args.partitions),
  concurrency: args.concurrency === undefined ? undefined : num('concurrency', args.concurrency),
  instances: num('instances', args.instances),
  redisCluster: args['redis-cluster'],
  // 'full' was the bulk phase's name before there were others
  profile: (args.profile === 'full' ? 'bulk' : args.profile) as PhaseName | undefined,
};
if (P.profile !== undefined && !PHASES.includes(P.profile)) {
  throw new Error(`--profile: expected one of ${PHASES.join(', ')}, got ${P.profile}`);
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
/** p99 of `ms` in each fifth of the span of `at` (the same length, the same order). */
const byFifth = (at: number[], ms: number[]) => {
  if (!at.length) return [];
  const from = at.reduce((a, b) => Math.min(a, b));
  const span = at.reduce((a, b) => Math.max(a, b)) - from + 1;
  const fifths: number[][] = [[], [], [], [], []];
  at.forEach((t, i) => fifths[Math.floor(((t - from) * 5) / span)]!.push(ms[i]!));
  return fifths.map((xs) => percentile(xs, 99));
};
const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
/** Commands Redis ran, but for the benchmark's own (INFO) and the cluster client's upkeep. */
const commandCalls = (text: string) =>
  [...text.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)]
    .filter((m) => !['info', 'cluster', 'command', 'ping'].includes(m[1]!))
    .reduce((t, m) => t + Number(m[2]), 0);

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

/** What a phase used: read at its start and at its end. */
interface Mark {
  wall: number;
  redisCpu: number;
  redisCalls: number;
  redisNetIn: number;
  nodeCpu: NodeJS.CpuUsage;
  machine: CpuMark | undefined;
  /** Summed over the processors given (a fresh processor starts from zero). */
  commandsSent: number;
  bytesWritten: number;
  cache: { loads: number; loadedEmpty: number; hits: number; evictions: number };
}

/** The bulk processor's consumer, to pause while a phase's events are produced (see the summary). */
const consumerOf = (p: Processor) => (p as unknown as { consumer: Consumer }).consumer;

async function main(): Promise<void> {
  const started = new Date();
  const { commit, dirty } = codeUnderTest();
  say('local stack: ' + stack('up').trim().split('\n').join('; '));
  let own: { url: string; proc: ChildProcess } | undefined;
  let clusterNodes = '';
  if (P.redisCluster) {
    say(stack('redis-cluster', 'up').trim());
    clusterNodes = stack('redis-cluster', 'env').trim().split('=')[1]!;
  } else own = await ownRedis();
  const stackVariables = stackEnv();
  const id = Date.now().toString(36);
  const configOverrides = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k.startsWith('FAIRFLAG__')),
  );
  const loaded = loadConfig({
    env: {
      ...stackVariables,
      ...(own ? { FAIRFLAG_REDIS_URL: own.url } : { FAIRFLAG_REDIS_CLUSTER_NODES: clusterNodes }),
      FAIRFLAG_GROUP_ID: `bench-${id}`,
      FAIRFLAG_REDIS_KEY_PREFIX: `bench${id}`,
      FAIRFLAG_HTTP_PORT: '0',
      FAIRFLAG__topics__partitions: String(P.partitions),
      ...(P.concurrency && { FAIRFLAG__kafka__partitionsConsumedConcurrently: String(P.concurrency) }),
      ...Object.fromEntries(TOPIC_KEYS.map((t) => [`FAIRFLAG__topics__${t}`, `bench-${id}.${t}`])),
      // any other setting to try, e.g. FAIRFLAG__kafka__maxBytesPerPartition=16384 npm run bench
      ...configOverrides,
      ...(P.maxAccounts && { FAIRFLAG__state__maxAccounts: String(P.maxAccounts) }),
    },
  });
  const { config } = loaded;
  const maxAccounts = config.state.maxAccounts;
  const log = createLogger('bench');
  log.level = 'error';
  const kafka = kafkaClient(config.kafka, log, '-bench');
  await ensureTopics(kafka, config.topics);
  const codec = await Codec.connect(config);
  const nodes = await redisNodes(loaded);
  if (P.redisCluster) for (const n of nodes) await n.flushall();
  // before any processor starts: it wraps the engine's prototype
  const probe = installEngineProbe();

  // Event time: the bulk spans two days (as it always has), each of warm and cold the same
  // density after it, all ending ten minutes ago; the steady phases run at the wall clock.
  const DAY = 86_400_000;
  const now = Date.now();
  const bulkSpan = 2 * DAY - 600_000;
  const chunkSpan = Math.round((bulkSpan * P.cacheEvents) / P.events);
  const bulkTo = now - 600_000 - 2 * chunkSpan;

  // 1. the workload, produced in the registry's wire format
  const producer = kafka.producer();
  await producer.connect();
  const accounts = new Set<string>();
  /** Produces events (the full-speed phases; the steady ones produce from a worker thread). */
  const produce = (events: Iterable<ActivityEvent>, chunk = 2000) =>
    produceEvents({ producer, codec, topics: config.topics }, events, {
      chunk,
      each: (e) => {
        accounts.add(e.event.accountId);
        if (e.family === 'contract') accounts.add(e.event.freelancerAccountId);
      },
    });
  say(`producing ${P.events} events for ${P.accounts} accounts...`);
  const t = performance.now();
  const total = await produce(
    workload({ accounts: P.accounts, events: P.events, from: bulkTo - bulkSpan, to: bulkTo, seed: 1 }),
  );
  const produceSeconds = (performance.now() - t) / 1000;
  const bulkAccounts = accounts.size;
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

  // 3. fairflag over the same messages, from a fresh consumer group, phase by phase
  // CPU spent per event by Redis (all nodes) and by this process, to see where the time goes;
  // the whole machine too: are both cores full, and who else uses them
  const redisCpu = (x: string) =>
    Number(/^used_cpu_user:([\d.]+)/m.exec(x)?.[1]) + Number(/^used_cpu_sys:([\d.]+)/m.exec(x)?.[1]);
  const pids = {
    processor: process.pid,
    redis: own?.proc.pid,
    'Kafka broker': stackPid('kafka'),
    registry: stackPid('registry'),
  };
  const mark = async (procs: Processor[]): Promise<Mark> => {
    const cache = { loads: 0, loadedEmpty: 0, hits: 0, evictions: 0 };
    for (const p of procs)
      for (const k of Object.keys(cache) as (keyof typeof cache)[]) cache[k] += p.accounts.stats[k];
    return {
      wall: performance.now(),
      redisCpu: await sumInfo(nodes, 'cpu', redisCpu),
      redisCalls: await sumInfo(nodes, 'commandstats', commandCalls),
      redisNetIn: await sumInfo(nodes, 'stats', (x) => infoNumber(x, 'total_net_input_bytes')),
      nodeCpu: process.cpuUsage(),
      machine: cpuMark(pids),
      commandsSent: procs.reduce((n, p) => n + p.backend.commandsSent, 0),
      bytesWritten: procs.reduce((n, p) => n + p.backend.bytesWritten, 0),
      cache,
    };
  };
  /** Per event over a phase (an upper bound: it includes waiting for the last batch). */
  const used = (a: Mark, b: Mark, events: number) => {
    const per = (x: number, digits = 0) => round(x / Math.max(1, events), digits);
    const cache = Object.fromEntries(
      (Object.keys(a.cache) as (keyof Mark['cache'])[]).map((k) => [k, b.cache[k] - a.cache[k]]),
    ) as Mark['cache'];
    return {
      cpuMicrosecondsPerEvent: {
        redis: per((b.redisCpu - a.redisCpu) * 1e6),
        processor: per(b.nodeCpu.user + b.nodeCpu.system - a.nodeCpu.user - a.nodeCpu.system),
      },
      redisCommandsPerEvent: {
        sent: per(b.commandsSent - a.commandsSent, 2),
        processed: per(b.redisCalls - a.redisCalls, 2),
      },
      redisBytesPerEvent: {
        accountValuesWritten: per(b.bytesWritten - a.bytesWritten),
        netInput: per(b.redisNetIn - a.redisNetIn),
      },
      accountCache: {
        ...cache,
        hitRate: round(cache.hits / Math.max(1, cache.hits + cache.loads), 3),
      },
      machine: cpuSplit(a.machine, b.machine, (b.wall - a.wall) / 1000, events) ?? null,
    };
  };

  let timings: { at: number; wall: number; b: BatchTiming }[] = [];
  const onBatchWritten = (b: BatchTiming) => timings.push({ at: performance.now(), wall: Date.now(), b });
  const startProcessors = async () => {
    const procs: Processor[] = [];
    for (let i = 0; i < P.instances; i++)
      procs.push(await Processor.start({ loaded, log, http: false, onBatchWritten }));
    return procs;
  };
  /** Inputs done: events, and the counterpart records they emitted (probe.counterpartsEmitted). */
  const inputsDone = (procs: Processor[]) =>
    procs.reduce((n, p) => n + p.counts.processed + p.counts.deadLettered, 0);
  const progress = (procs: Processor[]) => ({
    inputs: inputsDone(procs),
    counterparts: probe.counterpartsEmitted,
  });
  const untilDone = async (procs: Processor[], events: number, from: ReturnType<typeof progress>) => {
    while (inputsDone(procs) - from.inputs < events + probe.counterpartsEmitted - from.counterparts)
      await sleep(50);
  };
  /** From the first batch begun (batches run concurrently: the first one written is late) to the last written. */
  const rateOf = (events: number) => {
    const from = Math.min(...timings.map((x) => x.b.startedAt));
    return round(events / ((timings.at(-1)!.at - from) / 1000));
  };
  const setPaused = (procs: Processor[], paused: boolean) => {
    const list = consumedTopics(config.topics).map((topic) => ({ topic }));
    for (const p of procs) {
      if (paused) consumerOf(p).pause(list);
      else consumerOf(p).resume(list);
    }
  };

  // peak RSS since the first processor started, and per phase
  const rss = { overall: 0, phase: 0 };
  const sampleRss = () => {
    const r = process.memoryUsage.rss();
    rss.overall = Math.max(rss.overall, r);
    rss.phase = Math.max(rss.phase, r);
  };
  const mib = (b: number) => Math.round(b / 1048576);
  const rssTimer = setInterval(sampleRss, 200);
  // what the bench process held before any processor: the producer, the bare consumers' leftovers
  const rssBeforeProcessors = mib(process.memoryUsage.rss());
  const resultBase = join(
    PROJECT_ROOT,
    'bench/results',
    `pipeline-${started.toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z`,
  );
  mkdirSync(join(PROJECT_ROOT, 'bench/results'), { recursive: true });
  let profileSummary: string[] | undefined;
  const profile = P.profile ? new PhaseProfile() : undefined;
  /** Starts a phase: fresh timings and RSS peak, the profile if it is this phase's. */
  const begin = async (name: PhaseName) => {
    timings = [];
    rss.phase = 0;
    sampleRss();
    if (P.profile === name) await profile?.start();
  };
  const end = async (name: PhaseName, events: number) => {
    sampleRss();
    if (P.profile === name) profileSummary = await profile?.stop(resultBase, events);
    // the live heap next to the peak RSS: V8 keeps what it once grew to
    const m = process.memoryUsage();
    return {
      peakRssMiB: mib(rss.phase),
      heapUsedAtEndMiB: mib(m.heapUsed),
      heapTotalAtEndMiB: mib(m.heapTotal),
    };
  };
  const flagsAndDead = { flags: 0, dead: 0 };
  const retire = (procs: Processor[]) => {
    for (const p of procs) {
      flagsAndDead.flags += p.counts.flagsEmitted;
      flagsAndDead.dead += p.counts.deadLettered;
    }
  };

  // 3a. bulk: the whole stream at full speed, from an empty Redis
  const memBefore = await sumInfo(nodes, 'memory', (x) => infoNumber(x, 'used_memory'));
  await begin('bulk');
  const bulkStart = await mark([]);
  let procs = await startProcessors();
  await untilDone(procs, total, { inputs: 0, counterparts: 0 });
  const bulkRate = rateOf(total);
  const bulkMemory = await end('bulk', total);
  const bulk = {
    events: total,
    eventsPerSecond: bulkRate,
    ...used(bulkStart, await mark(procs), total),
    latencyMs: {
      // at full speed the backlog is the latency: for the record, not a target
      committed: pct(timings.flatMap(({ wall, b }) => b.producedAt.map((p) => wall - p))),
      flags: pct(timings.flatMap(({ b }) => b.flags.map((f) => f.producedAt - f.triggeredAt))),
    },
    ...bulkMemory,
  };
  const memAfter = await sumInfo(nodes, 'memory', (x) => infoNumber(x, 'used_memory'));
  const inputsPerInstance = () => procs.map((p) => p.counts.processed + p.counts.deadLettered);
  let firstInstances = inputsPerInstance();
  say(
    `fairflag bulk: ${Math.round(bulkRate)} events/s (${((bulkRate / bareRate) * 100).toFixed(1)}% of the bare consumer)`,
  );

  // 3b. warm: the same processor, paused while the events are produced, every account in memory
  const warmAccounts = Math.min(P.accounts, maxAccounts);
  type FullSpeedPhase = ReturnType<typeof used> & {
    events: number;
    accounts: number;
    eventsPerSecond: number;
    peakRssMiB: number;
    heapUsedAtEndMiB: number;
  };
  let warm: FullSpeedPhase | null = null;
  let cold: FullSpeedPhase | null = null;
  let afterRestart: number[] = [];
  if (P.cacheEvents > 0) {
    setPaused(procs, true);
    if (warmAccounts < P.accounts) {
      // the cache is smaller than the population: one cheap event each brings the warm set in
      say(`warm: bringing ${warmAccounts} accounts into memory...`);
      const from = progress(procs);
      const n = await produce(touchEach(warmAccounts, bulkTo));
      setPaused(procs, false);
      await untilDone(procs, n, from);
      setPaused(procs, true);
    }
    say(`warm: ${P.cacheEvents} events over ${warmAccounts} accounts...`);
    const n = await produce(
      workload({
        accounts: warmAccounts,
        events: P.cacheEvents,
        from: bulkTo,
        to: bulkTo + chunkSpan,
        seed: 3,
      }),
    );
    await begin('warm');
    const start = await mark(procs);
    const from = progress(procs);
    setPaused(procs, false);
    await untilDone(procs, n, from);
    const eventsPerSecond = rateOf(n);
    const memory = await end('warm', n);
    warm = {
      events: n,
      accounts: warmAccounts,
      eventsPerSecond,
      ...used(start, await mark(procs), n),
      ...memory,
    };
    say(`fairflag warm: ${Math.round(eventsPerSecond)} events/s`);

    // 3c. cold: a fresh processor (the same group: it goes on from the committed offsets) over the
    // Redis the phases before wrote
    firstInstances = inputsPerInstance();
    retire(procs);
    for (const p of procs) await p.stop();
    say(`cold: ${P.cacheEvents} events over ${P.accounts} accounts, fresh processor...`);
    const m = await produce(
      workload({
        accounts: P.accounts,
        events: P.cacheEvents,
        from: bulkTo + chunkSpan,
        to: bulkTo + 2 * chunkSpan,
        seed: 4,
      }),
    );
    await begin('cold');
    const coldStart = await mark([]);
    const coldFrom = { inputs: 0, counterparts: probe.counterpartsEmitted };
    procs = await startProcessors();
    await untilDone(procs, m, coldFrom);
    const coldRate = rateOf(m);
    const coldMemory = await end('cold', m);
    cold = {
      events: m,
      accounts: P.accounts,
      eventsPerSecond: coldRate,
      ...used(coldStart, await mark(procs), m),
      ...coldMemory,
    };
    say(`fairflag cold: ${Math.round(coldRate)} events/s`);
  }

  // 4. steady offered rates: latency when keeping up
  const steadyPhase = async (name: 'steady' | 'high', rate: number, seed: number) => {
    const from = Date.now();
    const stream = {
      accounts: P.accounts,
      events: Math.round(rate * P.steadySeconds),
      from,
      to: from + P.steadySeconds * 1000,
      seed,
    };
    say(`${name}: ${rate} events/s for ${P.steadySeconds} s...`);
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
    const durableFrom = probe.durableMs.length;
    const persistFrom = probe.persistMs.length;
    await begin(name);
    const start = await mark(procs);
    const before = progress(procs);
    // the process's CPU counts the generator's thread too; the loop's own busy time does not
    const loopFrom = performance.eventLoopUtilization();
    // the generator runs in a worker thread: its work and garbage are not the processor's
    const run = await produceSteadily({ config, stream, rate }, (ids, at) => {
      for (const id of ids) probe.sentAt.set(id, at);
    });
    for (const a of run.accounts) accounts.add(a);
    const offered = run.offered;
    const offeredRate = offered / run.seconds;
    await untilDone(procs, offered, before);
    const loop = performance.eventLoopUtilization(loopFrom);
    const memory = await end(name, offered);
    gcObserver.disconnect();
    loopDelay.disable();
    const sum = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0));
    const mainThread = {
      gcMinor: { count: gcPauses.minor.length, totalMs: sum(gcPauses.minor), ...pct(gcPauses.minor) },
      gcMajor: { count: gcPauses.major.length, totalMs: sum(gcPauses.major), ...pct(gcPauses.major) },
      gcMaxMs: Math.round(Math.max(0, ...gcPauses.minor, ...gcPauses.major)),
      // the event loop's busy share (its GC pauses included) and that time per event
      busy: round(loop.utilization, 2),
      busyMicrosecondsPerEvent: Math.round((loop.active * 1000) / offered),
      eventLoopDelayMs: {
        p50: Math.round(loopDelay.percentile(50) / 1e6),
        p99: Math.round(loopDelay.percentile(99) / 1e6),
        max: Math.round(loopDelay.max / 1e6),
      },
    };
    const batches = timings.map((x) => x.b);
    const latencyMs = {
      // produce -> the batch's state written to Redis (engine.persist done)
      features: pct(probe.durableMs.slice(durableFrom)),
      // the same by fifth of the phase (by produce time): a tail at the start is the phase
      // before it still settling, one spread over the phase is the steady state's own
      featuresP99ByFifth: byFifth(probe.durableSentAt.slice(durableFrom), probe.durableMs.slice(durableFrom)),
      flags: pct(batches.flatMap((b) => b.flags.map((f) => f.producedAt - f.triggeredAt))),
      // the features latency in parts: waiting for a batch to begin (in Kafka, or for the fetch
      // before it to be done: kafkajs fetches again only when every batch of a fetch is), the
      // batch's decoding and processing, and its persist (per batch, after its flags are produced)
      waitForBatch: pct(batches.flatMap((b) => b.producedAt.map((p) => b.begunAt - p))),
      processing: pct(batches.flatMap((b) => b.producedAt.map(() => b.featuresWrittenAt - b.begunAt))),
      persistPerBatch: pct(probe.persistMs.slice(persistFrom).map((x) => round(x, 1))),
      committed: pct(timings.flatMap(({ wall, b }) => b.producedAt.map((p) => wall - p))),
    };
    // events whose batch was never timed (none expected): not kept for the next phase
    probe.sentAt.clear();
    return {
      offeredEventsPerSecond: Math.round(offeredRate),
      events: offered,
      latencyMs,
      mainThread,
      ...used(start, await mark(procs), offered),
      ...memory,
    };
  };
  const steady = await steadyPhase('steady', P.rate, 2);
  const steadyHigh = P.highRate > 0 ? await steadyPhase('high', P.highRate, 5) : null;
  if (P.cacheEvents > 0) afterRestart = inputsPerInstance();
  else firstInstances = inputsPerInstance();
  const accountsInMemory = procs.reduce((n, p) => n + p.accounts.size, 0);

  clearInterval(rssTimer);
  retire(procs);
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
      maxAccounts,
      concurrency: config.kafka.partitionsConsumedConcurrently,
      config: loaded.version,
      configOverrides,
      // V8 settings (a heap limit, the young generation's size) change GC, so they go with the figures
      nodeOptions: process.env['NODE_OPTIONS'] ?? '',
      workload:
        'bench/workload.ts seed 1 (bulk), 3 (warm, after one account event each when the cache is smaller than the population), 4 (cold), 2 (steady), 5 (high)',
    },
    figures: {
      events: total,
      // accounts the bulk touched (memory per account is the bulk's), and all the run touched
      activeAccounts: bulkAccounts,
      activeAccountsInRun: accounts.size,
      produceSeconds,
      // kafkajs, the client fairflag uses; ratioToBare is relative to it
      bareConsumerEventsPerSecond: Math.round(bareRate),
      bareConsumerEventsPerSecondByClient: {
        kafkajs: Math.round(bareRate),
        platformaticKafka: Math.round(barePlatformaticRate),
      },
      fairflagEventsPerSecond: Math.round(bulkRate),
      ratioToBare: round(bulkRate / bareRate, 3),
      // inputs (events and counterpart records) per instance, before and after the cold restart
      perInstanceProcessed: { first: firstInstances, afterRestart },
      flagsEmitted: flagsAndDead.flags,
      deadLettered: flagsAndDead.dead,
      redisBytesPerActiveAccount: Math.round((memAfter - memBefore) / bulkAccounts),
      maxAccounts,
      accountsInMemoryAtEnd: accountsInMemory,
      peakRssMiB: mib(rss.overall),
      rssBeforeProcessorsMiB: rssBeforeProcessors,
      bulk,
      warm,
      cold,
      steady,
      steadyHigh,
    },
  };
  const f = result.figures;
  const targets = judgeTargets({
    fairflagEventsPerSecond: f.fairflagEventsPerSecond,
    ratioToBare: f.ratioToBare,
    steady: {
      offeredPerSecond: steady.offeredEventsPerSecond,
      featuresP99Ms: steady.latencyMs.features.p99,
      flagsP99Ms: steady.latencyMs.flags.p99,
    },
    steadyHigh: steadyHigh && {
      offeredPerSecond: steadyHigh.offeredEventsPerSecond,
      featuresP99Ms: steadyHigh.latencyMs.features.p99,
      flagsP99Ms: steadyHigh.latencyMs.flags.p99,
    },
    redisCpuMicrosecondsPerEvent: bulk.cpuMicrosecondsPerEvent.redis,
    redisCommandsPerEvent: bulk.redisCommandsPerEvent.processed,
    redisBytesWrittenPerEvent: bulk.redisBytesPerEvent.accountValuesWritten,
    cache: {
      maxAccounts,
      accounts: P.accounts,
      activeAccounts: accounts.size,
      peakRssMiB: f.peakRssMiB,
      rssBeforeProcessorsMiB: rssBeforeProcessors,
      warmEventsPerSecond: warm && Math.round(warm.eventsPerSecond),
      coldEventsPerSecond: cold && Math.round(cold.eventsPerSecond),
    },
  });
  const file = `${resultBase}.json`;
  writeFileSync(file, JSON.stringify({ ...result, targets }, null, 2) + '\n');

  const ms = (x: number | null) => (x === null ? 'n/a' : `${x} ms`);
  const three = (l: { p50: number | null; p95: number | null; p99: number | null }) =>
    `${ms(l.p50)} / ${ms(l.p95)} / ${ms(l.p99)}`;
  const two = (l: { p50: number | null; p99: number | null }) => `${ms(l.p50)} / ${ms(l.p99)}`;
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  type Phase = ReturnType<typeof used>;
  const fullSpeed: [string, Phase | null][] = [
    ['bulk', bulk],
    ['warm', warm],
    ['cold', cold],
  ];
  const perPhase = (show: (p: Phase) => string) =>
    fullSpeed
      .filter((x): x is [string, Phase] => x[1] !== null)
      .map(([name, p]) => `${name} ${show(p)}`)
      .join('; ');
  const allPhases = (
    [
      ['bulk', bulk],
      ['warm', warm],
      ['cold', cold],
      ['steady', steady],
      ['high', steadyHigh],
    ] as [string, { heapUsedAtEndMiB: number; peakRssMiB: number } | null][]
  ).filter((x): x is [string, { heapUsedAtEndMiB: number; peakRssMiB: number }] => x[1] !== null);
  const steadyRows = (label: string, s: typeof steady): [string, string][] => [
    [
      `${label} ${n(s.offeredEventsPerSecond)} ev/s: produce -> features durable p50/p95/p99`,
      three(s.latencyMs.features),
    ],
    [
      `${label}: p99 to features in each fifth of the phase`,
      s.latencyMs.featuresP99ByFifth.map((x) => (x === null ? '-' : `${x}`)).join(' / ') + ' ms',
    ],
    [
      `${label}: waiting for the batch / decode+process p50/p99; persist per batch`,
      `${two(s.latencyMs.waitForBatch)}, ${two(s.latencyMs.processing)}; ${two(s.latencyMs.persistPerBatch)}`,
    ],
    [
      `${label}: produce -> flag on topic p50/p95/p99 (${s.latencyMs.flags.n} flags)`,
      three(s.latencyMs.flags),
    ],
    [
      `${label}: GC pauses minor / major (count, total, max)`,
      `${s.mainThread.gcMinor.count}, ${s.mainThread.gcMinor.totalMs} ms / ${s.mainThread.gcMajor.count}, ${s.mainThread.gcMajor.totalMs} ms; max ${s.mainThread.gcMaxMs} ms`,
    ],
    [
      `${label}: event-loop delay p50 / p99 / max`,
      `${s.mainThread.eventLoopDelayMs.p50} / ${s.mainThread.eventLoopDelayMs.p99} / ${s.mainThread.eventLoopDelayMs.max} ms`,
    ],
    [
      `${label}: main thread busy (event-loop utilisation), its µs per event`,
      `${Math.round(s.mainThread.busy * 100)}%, ${s.mainThread.busyMicrosecondsPerEvent} µs`,
    ],
    [
      `${label}: CPU per event Redis / processor (with the producer)`,
      `${s.cpuMicrosecondsPerEvent.redis} µs / ${s.cpuMicrosecondsPerEvent.processor} µs`,
    ],
  ];
  const rows: [string, string][] = [
    ['machine', `${result.machine.cores} cores, ${result.machine.cpu}, ${process.version}`],
    ['events / active accounts (bulk)', `${n(f.events)} / ${n(f.activeAccounts)}`],
    ['bare kafkajs consumer (read + decode)', `${n(f.bareConsumerEventsPerSecond)} events/s`],
    [
      'bare @platformatic/kafka consumer (read + decode)',
      `${n(f.bareConsumerEventsPerSecondByClient.platformaticKafka)} events/s`,
    ],
    [
      `fairflag bulk, ${P.instances} instance(s), from an empty Redis`,
      `${n(f.fairflagEventsPerSecond)} events/s (${(f.ratioToBare * 100).toFixed(1)}% of bare)`,
    ],
    ...(warm && cold
      ? ([
          [
            `warm (${n(warm.events)} events, ${n(warmAccounts)} accounts) / cold (fresh processor)`,
            `${n(warm.eventsPerSecond)} / ${n(cold.eventsPerSecond)} events/s`,
          ],
        ] as [string, string][])
      : []),
    [
      `account cache (max ${n(maxAccounts)}): hit rate, loads (empty), evictions`,
      perPhase(
        (p) =>
          `${Math.round(p.accountCache.hitRate * 100)}%, ${n(p.accountCache.loads)} (${n(p.accountCache.loadedEmpty)}), ${n(p.accountCache.evictions)}`,
      ),
    ],
    ['bulk: produce -> batch committed p50/p95/p99 (backlog)', three(bulk.latencyMs.committed)],
    ...steadyRows('steady', steady),
    ...(steadyHigh ? steadyRows('high', steadyHigh) : []),
    ['Redis memory per active account (after bulk)', `${n(f.redisBytesPerActiveAccount)} bytes`],
    [
      'CPU per event at full speed: Redis / processor',
      perPhase((p) => `${p.cpuMicrosecondsPerEvent.redis} / ${p.cpuMicrosecondsPerEvent.processor} µs`),
    ],
    ...(bulk.machine
      ? ([
          [
            `bulk: cores busy of ${result.machine.cores}`,
            `${bulk.machine.coresBusy} (CPU µs/event: ${Object.entries(bulk.machine.microsecondsPerEvent)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')})`,
          ],
        ] as [string, string][])
      : []),
    [
      'Redis commands per event: sent / processed',
      perPhase((p) => `${p.redisCommandsPerEvent.sent} / ${p.redisCommandsPerEvent.processed}`),
    ],
    [
      'bytes per event: account values written / Redis net input',
      perPhase(
        (p) => `${n(p.redisBytesPerEvent.accountValuesWritten)} / ${n(p.redisBytesPerEvent.netInput)}`,
      ),
    ],
    [
      'peak RSS (processor in the bench process): run; by phase',
      `${n(f.peakRssMiB)} MiB (${n(rssBeforeProcessors)} before any processor); ` +
        allPhases.map(([name, p]) => `${name} ${n(p.peakRssMiB)}`).join(', '),
    ],
    [
      'heap used at the end of each phase',
      allPhases.map(([name, p]) => `${name} ${n(p.heapUsedAtEndMiB)}`).join(', ') + ' MiB',
    ],
    ['accounts in memory at the end', n(accountsInMemory)],
    ['flags emitted / dead-lettered', `${n(f.flagsEmitted)} / ${n(f.deadLettered)}`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(
    rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') +
      `\n\ntargets (issue 16):\n${formatVerdicts(targets).join('\n')}\n\nwritten to ${file}\n`,
  );
  if (profileSummary) process.stdout.write(`\n${profileSummary.join('\n')}\n`);
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
