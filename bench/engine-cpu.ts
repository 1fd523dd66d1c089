// Engine CPU benchmark: the processor's own work per event with no Kafka, registry or Redis in the
// way (validate + enrich, then Engine.run over OwnedAccounts and an in-process state backend, the
// shipped config's sixteen signals), on the pipeline benchmark's workload. The full pipeline's
// processor CPU is this plus decoding, kafkajs and the Redis client; this part is what the domain
// code costs, measured quietly enough to compare one change with another in alternating rounds.
//
//   npm run bench:engine                          # 20,000 accounts, 200,000 events, 3 rounds
//   npm run bench:engine -- --rounds 5 --profile  # + CPU/allocation profile of the last round
//
// Writes bench/results/engine-cpu-<ISO time>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EnrichedEvent } from '../src/domain/events.js';
import { Engine, type EngineInput } from '../src/engine/engine.js';
import { compilePolicy } from '../src/engine/policy.js';
import { GeoIp } from '../src/enrich/geoip.js';
import { OwnedAccounts } from '../src/features/owned-accounts.js';
import { MemoryStateBackend } from '../src/features/state-backend.js';
import { ingest } from '../src/ingest/ingest.js';
import { partitionOfKey } from '../src/kafka/processor.js';
import { loadConfig } from '../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../src/runtime/project.js';
import { codeUnderTest } from './code-under-test.js';
import { PhaseProfile } from './profile.js';
import { workload } from './workload.js';

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string', default: '20000' },
    events: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '1000' },
    partitions: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    profile: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(`npm run bench:engine -- [--accounts 20000] [--events 200000] [--batch 1000]
                        [--partitions 3] [--rounds 3] [--profile]
--batch:      events per batch of one topic-partition (a 256 KiB fetch holds about 1,000)
--rounds:     the whole stream again in a fresh engine each round; the median is reported
--profile:    CPU and allocation profiles of the last round, summed up by where the code lives
`);
  process.exit(0);
}
const num = (k: keyof typeof args) => {
  const n = Number(args[k]);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${k}: expected a positive integer, got ${args[k]}`);
  return n;
};
const P = {
  accounts: num('accounts'),
  events: num('events'),
  batch: num('batch'),
  partitions: num('partitions'),
  rounds: num('rounds'),
};

const code = codeUnderTest();
const loaded = loadConfig({ env: {} });
const { config } = loaded;
const policy = compilePolicy(loaded);
const geo = await GeoIp.open(config.maxmind);
const DAY = 86_400_000;
const now = Date.now();

/** One round's batches: each topic-partition's events in order, `batch` at a time, interleaved. */
function batchesOf(events: EnrichedEvent[]): { partition: number; inputs: EngineInput[] }[] {
  const open = new Map<string, { partition: number; inputs: EngineInput[] }>();
  const out: { partition: number; inputs: EngineInput[] }[] = [];
  for (const event of events) {
    const partition = partitionOfKey(event.event.accountId, P.partitions);
    const key = `${event.family}/${partition}`;
    let b = open.get(key);
    if (!b) open.set(key, (b = { partition, inputs: [] }));
    b.inputs.push({ kind: 'event', event });
    if (b.inputs.length === P.batch) {
      out.push(b);
      open.delete(key);
    }
  }
  out.push(...open.values());
  return out;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

process.stdout.write(`generating ${P.events} events for ${P.accounts} accounts...\n`);
const raw = [...workload({ accounts: P.accounts, events: P.events, from: now - 2 * DAY, to: now, seed: 1 })];
let t = cpuMs();
const enriched: EnrichedEvent[] = [];
for (const e of raw) {
  const r = ingest(e.family, e.event, config.validation, geo, now);
  if (r.ok) enriched.push(r.event);
}
const ingestUs = ((cpuMs() - t) * 1000) / raw.length;
const batches = batchesOf(enriched);

interface Round {
  usPerEvent: number;
  flags: number;
}
const rounds: Round[] = [];
const base = join(
  PROJECT_ROOT,
  'bench/results',
  `engine-cpu-${new Date().toISOString().slice(0, 19).replace(/:/g, '-')}Z`,
);
let profileSummary: string[] = [];
for (let r = 0; r < P.rounds; r++) {
  const backend = new MemoryStateBackend();
  const accounts = new OwnedAccounts({
    backend,
    layout: () => policy.layout,
    ttlMs: () => policy.accountTtlMs,
    maxAccounts: config.state.maxAccounts,
  });
  const engine = new Engine({ accounts, backend, policy: () => policy, counterparts: 'inline' });
  const profile = args.profile && r === P.rounds - 1 ? new PhaseProfile() : undefined;
  await profile?.start();
  t = cpuMs();
  let flags = 0;
  for (const b of batches) flags += (await engine.run(b.inputs, b.partition)).emissions.length;
  const usPerEvent = ((cpuMs() - t) * 1000) / enriched.length;
  if (profile) profileSummary = await profile.stop(base, enriched.length);
  rounds.push({ usPerEvent, flags });
  process.stdout.write(`round ${r + 1}: ${usPerEvent.toFixed(1)} µs/event in the engine, ${flags} flags\n`);
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const result = {
  benchmark: 'engine-cpu',
  at: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
    loadAverageAtEnd: loadavg(),
  },
  git: code,
  params: P,
  events: enriched.length,
  batches: batches.length,
  ingestUsPerEvent: ingestUs,
  engineUsPerEvent: {
    median: median(rounds.map((r) => r.usPerEvent)),
    rounds: rounds.map((r) => r.usPerEvent),
  },
  flags: rounds[0]!.flags,
};
mkdirSync(join(PROJECT_ROOT, 'bench/results'), { recursive: true });
writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  `validate + enrich ${ingestUs.toFixed(1)} µs/event; engine median ${result.engineUsPerEvent.median.toFixed(1)} µs/event ` +
    `over ${P.rounds} rounds (${batches.length} batches); ${result.flags} flags\n` +
    (profileSummary.length ? `${profileSummary.join('\n')}\n` : '') +
    `results: ${base.replace(`${PROJECT_ROOT}/`, '')}.json\n`,
);
