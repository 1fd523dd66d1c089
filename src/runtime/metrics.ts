// Prometheus metrics. One registry per processor instance, so tests can run several side by side.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  // event-loop delay sampled every millisecond: fairflag_nodejs_eventloop_lag_max_seconds is the
  // longest time the loop was held since the previous scrape (no message may hold it for long)
  collectDefaultMetrics({ register: registry, prefix: 'fairflag_', eventLoopMonitoringPrecision: 1 });
  const m = {
    registry,
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
      name: 'fairflag_consumer_lag',
      help: 'Messages behind the high watermark, by topic and partition, at the last batch',
      labelNames: ['topic', 'partition'] as const,
      registers: [registry],
    }),
    retries: new Counter({
      name: 'fairflag_batch_retries_total',
      help: 'Retries of a batch step, by the error class: an outage of Redis, Kafka or the registry (retried while it lasts), or an unexpected error (at most processing.attempts in all)',
      labelNames: ['cause'] as const,
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
    configReloads: new Counter({
      name: 'fairflag_config_reloads_total',
      help: 'Config reloads by result (applied, rejected)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
