// History from day one: fairflag is deployed onto accounts with years of history it never saw.
// A snapshot from the system of record (one account a line) becomes the context events those
// years would have produced, published to the input topics like any other event: the live
// pipeline applies them, so there is no second way into the feature state. Event ids are derived
// from the account and the fact, so running a snapshot again (resuming) changes nothing.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { ActivityEvent, ContractEvent } from '../domain/events.js';
import { InvalidEventError, validateActivity } from '../ingest/validate.js';
import { Codec } from '../kafka/codec.js';
import { ensureTopics, kafkaClient } from '../kafka/processor.js';
import { publishActivity } from '../kafka/topic-tools.js';
import type { LoadedConfig } from '../runtime/config-loader.js';
import type { Logger } from '../runtime/logger.js';

const time = z.union([z.int().nonnegative(), z.iso.datetime().transform((s) => Date.parse(s))], {
  error: 'expected epoch milliseconds or an ISO-8601 UTC time',
});
const id = z.string({ error: 'expected an id' }).min(1, { error: 'expected an id' }).max(128);
const count = z.number({ error: 'expected a number of 0 or more' }).nonnegative();

export const snapshotLine = z.strictObject({
  accountId: id,
  createdAt: time,
  accountType: z.enum(['FREELANCER', 'CLIENT', 'AGENCY']).nullable().default(null),
  /** When identity was verified; absent or null: not verified. */
  identityVerifiedAt: time.nullable().default(null),
  stats: z
    .strictObject({
      at: time,
      completedContracts: count.nullable().default(null),
      paidHours: count.nullable().default(null),
      earnings: count.nullable().default(null),
    })
    .nullable()
    .default(null),
  openContracts: z
    .array(
      z.strictObject({
        contractId: id,
        clientAccountId: id,
        freelancerAccountId: id,
        startedAt: time,
        lastPaidAt: time.nullable().default(null),
      }),
    )
    .max(256)
    .default([]),
});
export type SnapshotLine = z.output<typeof snapshotLine>;

/** The context events an account's snapshot stands for, in time order. */
export function contextEvents(s: SnapshotLine): ActivityEvent[] {
  const eventId = (fact: string) => `bootstrap:${s.accountId}:${fact}`;
  const account = {
    accountId: s.accountId,
    accountType: null,
    lifetimeCompletedContracts: null,
    lifetimePaidHours: null,
    lifetimeEarnings: null,
    ip: null,
    deviceId: null,
  };
  const out: ActivityEvent[] = [
    {
      family: 'account',
      event: {
        ...account,
        eventId: eventId('created'),
        occurredAt: s.createdAt,
        action: 'CREATED',
        accountType: s.accountType,
      },
    },
  ];
  if (s.identityVerifiedAt !== null)
    out.push({
      family: 'account',
      event: {
        ...account,
        eventId: eventId('identity-verified'),
        occurredAt: s.identityVerifiedAt,
        action: 'IDENTITY_VERIFIED',
      },
    });
  if (s.stats)
    out.push({
      family: 'account',
      event: {
        ...account,
        eventId: eventId(`stats:${s.stats.at}`),
        occurredAt: s.stats.at,
        action: 'STATS_UPDATED',
        lifetimeCompletedContracts: s.stats.completedContracts,
        lifetimePaidHours: s.stats.paidHours,
        lifetimeEarnings: s.stats.earnings,
      },
    });
  for (const c of s.openContracts) {
    const contract = (fact: string, at: number, action: ContractEvent['action']): ActivityEvent => ({
      family: 'contract',
      event: {
        eventId: eventId(`contract:${c.contractId}:${fact}`),
        // keyed by this account, so its own owner applies them (the other side follows)
        accountId: s.accountId,
        occurredAt: at,
        contractId: c.contractId,
        clientAccountId: c.clientAccountId,
        freelancerAccountId: c.freelancerAccountId,
        action,
        amount: null,
        currency: null,
        rating: null,
        disputeReason: null,
        ip: null,
        deviceId: null,
      },
    });
    out.push(contract('started', c.startedAt, 'STARTED'));
    if (c.lastPaidAt !== null) out.push(contract(`paid:${c.lastPaidAt}`, c.lastPaidAt, 'MILESTONE_PAID'));
  }
  return out.sort((a, b) => a.event.occurredAt - b.event.occurredAt);
}

export type SnapshotItem =
  { line: number; accountId: string; events: ActivityEvent[] } | { line: number; error: string };

/** Reads a snapshot line by line; a bad line is an item naming its number and every problem. */
export async function* readSnapshot(file: string, maxLineBytes: number): AsyncGenerator<SnapshotItem> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (!text.trim()) continue;
    if (text.length > maxLineBytes) {
      yield { line, error: `${text.length} characters, more than tools.maxLineBytes (${maxLineBytes})` };
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      yield { line, error: `not JSON: ${(err as Error).message}` };
      continue;
    }
    const r = snapshotLine.safeParse(parsed);
    if (!r.success) {
      yield {
        line,
        error: r.error.issues.map((i) => `${i.path.join('.') || 'line'}: ${i.message}`).join('; '),
      };
      continue;
    }
    yield { line, accountId: r.data.accountId, events: contextEvents(r.data) };
  }
}

export interface BootstrapResult {
  accounts: number;
  events: number;
  /** Lines before `fromLine`, left alone (a resumed run). */
  skipped: number;
  rejected: { line: number; error: string }[];
}

/**
 * Publishes a snapshot's context events to the input topics, a few hundred at a time. Lines
 * before `fromLine` are skipped (resuming: running everything again is also safe, only slower).
 */
export async function publishSnapshot(o: {
  loaded: LoadedConfig;
  file: string;
  fromLine?: number;
  onProgress?: (line: number) => void;
  log: Logger;
}): Promise<BootstrapResult> {
  const { config } = o.loaded;
  const kafka = kafkaClient(config.kafka, o.log, '-bootstrap');
  // a producer of account and contract events: their schemas are registered (and checked) too
  const codec = await Codec.connect(config, (m) => o.log.info(m), { produces: ['account', 'contract'] });
  await ensureTopics(kafka, config.topics);
  const producer = kafka.producer();
  await producer.connect();
  const result: BootstrapResult = { accounts: 0, events: 0, skipped: 0, rejected: [] };
  let pending: ActivityEvent[] = [];
  const flush = async () => {
    if (pending.length) await publishActivity(producer, codec, config.topics, pending);
    pending = [];
  };
  try {
    for await (const item of readSnapshot(o.file, config.tools.maxLineBytes)) {
      o.onProgress?.(item.line);
      if (item.line < (o.fromLine ?? 1)) {
        result.skipped++;
        continue;
      }
      if ('error' in item) {
        result.rejected.push(item);
        continue;
      }
      // the pipeline's own checks (times, ids): a line it would dead-letter is refused here, whole
      const problem = item.events.flatMap((e) => {
        try {
          validateActivity(e.family, e.event, config.validation);
          return [];
        } catch (err) {
          if (err instanceof InvalidEventError) return [`${e.event.eventId}: ${err.message}`];
          throw err;
        }
      })[0];
      if (problem) {
        result.rejected.push({ line: item.line, error: problem });
        continue;
      }
      pending.push(...item.events);
      result.accounts++;
      result.events += item.events.length;
      if (pending.length >= 500) await flush();
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
  return result;
}
