// Prometheus metrics. One registry per processor instance, so tests can run several side by side.
import { openSync, readSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeadLetterReason } from '../ingest/ingest.js';
import type { Judgement } from '../kafka/failure.js';
import { buildCommit, PACKAGE_VERSION } from './project.js';

/**
 * The stages of a batch, each timed: decode (decode, validate, enrich every message), features
 * (load accounts and apply the events), signals (evaluate signals and score), produce (flags,
 * counterpart records, dead letters), persist (write the state to Redis), commit (the offsets).
 */
export const BATCH_STAGES = ['decode', 'features', 'signals', 'produce', 'persist', 'commit'] as const;
export type BatchStage = (typeof BATCH_STAGES)[number];

/** The batch steps that are retried (Processor.attempt). */
export const RETRIED_STEPS = ['process', 'persist', 'produce'] as const;
export type RetriedStep = (typeof RETRIED_STEPS)[number];

/**
 * Why a batch step was retried, a fixed set: the service that is out, or "unexpected" (bounded
 * attempts). Error classes and messages would make the label unbounded.
 */
export const RETRY_CAUSES = ['redis', 'kafka', 'registry', 'network', 'unexpected'] as const;
export type RetryCause = (typeof RETRY_CAUSES)[number];

export function retryCause(j: Judgement): RetryCause {
  return j.kind === 'outage' ? j.service : 'unexpected';
}

/** Every dead-letter reason, so each series exists (at 0) before the first dead letter. */
const DEAD_LETTER_REASONS = Object.keys({
  oversized: 0,
  not_wire_format: 0,
  unknown_schema_id: 0,
  unsupported_schema: 0,
  wrong_schema: 0,
  undecodable: 0,
  invalid_field: 0,
  wrong_partition: 0,
  conflicting_duplicate: 0,
  processing_error: 0,
} satisfies Record<DeadLetterReason, 0>) as DeadLetterReason[];

/**
 * On-CPU time of the calling thread so far, in ms: Linux's /proc/thread-self/schedstat (called
 * on the main thread, that is the event loop's). Elsewhere the whole process's CPU time, which
 * also counts background threads (GC, compilers, the thread pool).
 */
function threadCpuClock(): () => number {
  try {
    const fd = openSync('/proc/thread-self/schedstat', 'r');
    const buf = Buffer.alloc(128);
    const read = () => Number(buf.toString('latin1', 0, readSync(fd, buf, 0, 128, 0)).split(' ')[0]) / 1e6;
    if (Number.isFinite(read())) return read;
  } catch {
    // not Linux
  }
  return () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
}

/**
 * How long the event loop is held by this process's own work. A 2 ms timer that fires late was
 * held up; the CPU time the event loop's thread ran meanwhile is work (fairflag's, or GC), the
 * rest the machine not running it (a busy host), which the event-loop lag metrics cannot tell
 * apart. Kept as the longest since it was last read.
 */
class LoopBusy {
  private maxMs = 0;
  private readonly cpu = threadCpuClock();
  private last = performance.now();
  private lastCpu = this.cpu();
  constructor(private readonly everyMs = 2) {
    setInterval(() => {
      const now = performance.now();
      const cpu = this.cpu();
      if (now - this.last - this.everyMs > 1)
        this.maxMs = Math.max(this.maxMs, Math.min(cpu - this.lastCpu, now - this.last));
      this.last = now;
      this.lastCpu = cpu;
    }, everyMs).unref();
  }
  take(): number {
    const v = this.maxMs;
    this.maxMs = 0;
    return v;
  }
}

export function createMetrics() {
  const registry = new Registry();
  // Node's standard process_* and nodejs_* metrics, unprefixed as every Node exporter has them.
  // Event-loop delay sampled every millisecond: nodejs_eventloop_lag_max_seconds is the longest
  // time the loop was held since the previous scrape (no message may hold it for long).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1 });
  const busy = new LoopBusy();
  const probe: { run?: () => Promise<Record<string, boolean>> } = {};
  const m = {
    registry,
    buildInfo: new Gauge({
      name: 'fairflag_build_info',
      help: 'Always 1: the package version and the git commit of the code running (FAIRFLAG_COMMIT, else git rev-parse HEAD of the checkout, else unknown)',
      labelNames: ['version', 'commit'] as const,
      registers: [registry],
    }),
    configInfo: new Gauge({
      name: 'fairflag_config_info',
      help: 'Always 1: the version (digest) of the config in effect; changes when a reload is applied',
      labelNames: ['version'] as const,
      registers: [registry],
    }),
    readiness: new Gauge({
      name: 'fairflag_readiness_check',
      help: 'Readiness checks (redis, registry, kafka) run at scrape time, as /readyz runs them: 1 passing, 0 failing',
      labelNames: ['check'] as const,
      registers: [registry],
      async collect() {
        if (!probe.run) return;
        for (const [check, ok] of Object.entries(await probe.run())) this.set({ check }, ok ? 1 : 0);
      },
    }),
    /** Set by the processor: its readiness checks, run on each scrape. */
    probe,
    stageDuration: new Histogram({
      name: 'fairflag_batch_stage_duration_seconds',
      help: 'Time a batch spent in each stage: decode, features and signals once per processing attempt; produce, persist and commit including their retries',
      labelNames: ['stage'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    loopBusy: new Gauge({
      name: 'fairflag_event_loop_busy_max_seconds',
      help: "Longest time the event loop was held by this process's own work (CPU time while a 2 ms timer was late) since the previous scrape; unlike the event-loop lag, a busy host does not count",
      registers: [registry],
      collect() {
        this.set(busy.take() / 1000);
      },
    }),
    events: new Counter({
      name: 'fairflag_events_total',
      help: 'Input events by topic and outcome (processed, dead_lettered, late)',
      labelNames: ['topic', 'outcome'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'fairflag_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    lateEvents: new Counter({
      name: 'fairflag_late_events_total',
      help: 'Events older than the allowed lateness: context kept, windowed features ignored them',
      registers: [registry],
    }),
    signalFired: new Counter({
      name: 'fairflag_signal_observations_total',
      help: 'Signal evaluations that fired, by signal',
      labelNames: ['signal'] as const,
      registers: [registry],
    }),
    signalErrors: new Counter({
      name: 'fairflag_signal_errors_total',
      help: 'Signal evaluations that threw (a bug: the event is still processed)',
      labelNames: ['signal'] as const,
      registers: [registry],
    }),
    flags: new Counter({
      name: 'fairflag_flags_emitted_total',
      help: 'Review flags emitted (new or updated), by queue and severity',
      labelNames: ['queue', 'severity'] as const,
      registers: [registry],
    }),
    shadowFlags: new Counter({
      name: 'fairflag_shadow_flags_emitted_total',
      help: "A shadow candidate's would-be flags (new or updated) on the shadow topic, by queue and severity",
      labelNames: ['queue', 'severity'] as const,
      registers: [registry],
    }),
    reviewOutcomes: new Counter({
      name: 'fairflag_review_outcomes_total',
      help: 'Review outcomes of closed flags, by signal on the flag and outcome (false positives: cleared)',
      labelNames: ['signal', 'outcome'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'fairflag_processing_latency_seconds',
      help: "From an event's produce time to its features being written",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'fairflag_consumer_lag_messages',
      help: "Messages behind the high watermark, by topic and partition: the group's committed offsets against the partitions' ends every kafka.lagInterval (every partition, whoever owns it), and this member's own after each batch",
      labelNames: ['topic', 'partition'] as const,
      registers: [registry],
    }),
    retries: new Counter({
      name: 'fairflag_batch_retries_total',
      help: 'Retries of a batch step (process, persist, produce), by cause: an outage of redis, kafka, registry or the network (retried while it lasts), or unexpected (at most processing.attempts in all)',
      labelNames: ['step', 'cause'] as const,
      registers: [registry],
    }),
    isolations: new Counter({
      name: 'fairflag_batch_isolations_total',
      help: 'Batch steps that kept failing with an unexpected error (processing.attempts) and were split to find the message, by step (process, produce)',
      labelNames: ['step'] as const,
      registers: [registry],
    }),
    registryLookups: new Counter({
      name: 'fairflag_registry_lookups_total',
      help: "Lookups of writers' schema ids in the registry, by result (found, unknown, unsupported, failed); unknown and unsupported ids are remembered for registry.rejectedIdTtl",
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    accountsInMemory: new Gauge({
      name: 'fairflag_accounts_in_memory',
      help: 'Accounts whose features this instance holds in memory (in use, unwritten, or clean and kept by state.maxAccounts)',
      registers: [registry],
    }),
    accountLoads: new Counter({
      name: 'fairflag_account_loads_total',
      help: 'Accounts loaded from Redis on their first event here, by what was stored (found, none, unreadable)',
      labelNames: ['stored'] as const,
      registers: [registry],
    }),
    accountEvictions: new Counter({
      name: 'fairflag_account_evictions_total',
      help: 'Clean accounts evicted from memory beyond state.maxAccounts (Redis has them)',
      registers: [registry],
    }),
    configReloadOk: new Gauge({
      name: 'fairflag_config_last_reload_successful',
      help: 'Whether the last config reload was applied (1; also before any reload) or rejected (0: the running config stays)',
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'fairflag_config_reloads_total',
      help: 'Config reloads by result (applied, rejected)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
  m.buildInfo.set({ version: PACKAGE_VERSION, commit: buildCommit() }, 1);
  m.configReloadOk.set(1);
  // series of fixed label sets exist from the start, so rate() and alerts see the first increase
  for (const stage of BATCH_STAGES) m.stageDuration.zero({ stage });
  for (const step of RETRIED_STEPS) for (const cause of RETRY_CAUSES) m.retries.inc({ step, cause }, 0);
  for (const step of ['process', 'produce']) m.isolations.inc({ step }, 0);
  for (const reason of DEAD_LETTER_REASONS) m.deadLetters.inc({ reason }, 0);
  for (const result of ['applied', 'rejected']) m.configReloads.inc({ result }, 0);
  for (const result of ['found', 'unknown', 'unsupported', 'failed']) m.registryLookups.inc({ result }, 0);
  return m;
}

/** Marks `version` as the config in effect (the only series of fairflag_config_info). */
export function setConfigInfo(m: Metrics, version: string): void {
  m.configInfo.reset();
  m.configInfo.set({ version }, 1);
}

export type Metrics = ReturnType<typeof createMetrics>;
