// The steady phases' load generator, in a worker thread of its own: producing at an offered rate
// (generating, Avro-encoding and sending events) used to share the event loop and the heap with
// the processor it measured, so its work and its garbage showed up as the processor's latency.
// The worker tells the main thread each produce request's event ids and time before sending it,
// so the processor never sees an event whose produce time is not known yet.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { ActivityEvent } from '../src/domain/events.js';
import { Codec } from '../src/kafka/codec.js';
import { kafkaClient } from '../src/kafka/connection.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../src/runtime/logger.js';
import { produceEvents, workload, type WorkloadOptions } from './workload.js';

export interface SteadyJob {
  config: Pick<Config, 'kafka' | 'registry' | 'topics'>;
  stream: WorkloadOptions;
  /** Offered events per second. */
  rate: number;
}

export interface SteadyRun {
  offered: number;
  seconds: number;
  /** Every account the phase's events named (the acting one, and a contract's freelancer). */
  accounts: string[];
}

type FromWorker =
  | { kind: 'sent'; ids: string[]; at: number }
  | { kind: 'done'; run: SteadyRun }
  | { kind: 'failed'; message: string };

/** Runs a steady phase's producer in a worker; `sent` hears of every event before it is sent. */
export function produceSteadily(
  job: SteadyJob,
  sent: (ids: string[], at: number) => void,
): Promise<SteadyRun> {
  // tsx does not follow a Worker into TypeScript by itself: the worker registers it first
  const self = new URL(import.meta.url).href;
  const worker = new Worker(
    `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(self)}); })`,
    { eval: true, workerData: job },
  );
  return new Promise<SteadyRun>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.kind === 'sent') sent(m.ids, m.at);
      else if (m.kind === 'done') {
        resolve(m.run);
        void worker.terminate();
      } else reject(new Error(`steady producer: ${m.message}`));
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`steady producer exited with ${code} before it was done`)));
  });
}

async function produceJob({ config, stream, rate }: SteadyJob): Promise<SteadyRun> {
  const log = createLogger('bench');
  log.level = 'error';
  const kafka = kafkaClient(config.kafka, log, '-bench-steady');
  const codec = await Codec.connect(config);
  const producer = kafka.producer();
  await producer.connect();
  const accounts = new Set<string>();
  const events = workload(stream);
  const tick = 50;
  const perTick = Math.max(1, Math.round((rate * tick) / 1000));
  let offered = 0;
  const start = performance.now();
  try {
    for (;;) {
      const chunk: ActivityEvent[] = [];
      for (let i = 0; i < perTick; i++) {
        const n = events.next();
        if (n.done) break;
        chunk.push(n.value);
      }
      if (!chunk.length) break;
      offered += await produceEvents({ producer, codec, topics: config.topics }, chunk, {
        chunk: perTick,
        each: (e) => {
          accounts.add(e.event.accountId);
          if (e.family === 'contract') accounts.add(e.event.freelancerAccountId);
        },
        beforeSend: (es, at) =>
          parentPort!.postMessage({
            kind: 'sent',
            ids: es.map((e) => e.event.eventId),
            at,
          } satisfies FromWorker),
      });
      const wait = start + (offered / rate) * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    return { offered, seconds: (performance.now() - start) / 1000, accounts: [...accounts] };
  } finally {
    await producer.disconnect();
  }
}

if (!isMainThread && parentPort && (workerData as SteadyJob | undefined)?.stream) {
  produceJob(workerData as SteadyJob).then(
    (run) => parentPort!.postMessage({ kind: 'done', run } satisfies FromWorker),
    (err: unknown) =>
      parentPort!.postMessage({
        kind: 'failed',
        message: (err as Error)?.message ?? String(err),
      } satisfies FromWorker),
  );
}
