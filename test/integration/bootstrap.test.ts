// History from day one, through the real Kafka, registry and Redis: an empty feature store, a
// bootstrap snapshot from the system of record, then the travelling freelancer's ten days.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContractEvent } from '../../src/domain/events.js';
import { scoreAccount } from '../../src/engine/engine.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { createLogger } from '../../src/runtime/logger.js';
import { DAY, travellingFreelancer } from '../../src/scenarios/reference.js';
import { publishSnapshot } from '../../src/tools/bootstrap.js';
import { explainStored } from '../../src/tools/explain.js';
import { formatExplanation } from '../../src/tools/format.js';
import { isolatedConfig } from '../support/config.js';
import { Harness } from '../support/pipeline.js';

describe('fairflag bootstrap', () => {
  let h: Harness;
  const run = Date.now().toString(36);
  const t0 = Date.now() - 11 * DAY;
  const known = travellingFreelancer(t0, `boot-${run}`);
  const unknown = travellingFreelancer(t0, `noboot-${run}`);
  const dir = mkdtempSync(join(tmpdir(), 'fairflag-bootstrap-'));
  const log = createLogger('bootstrap-test');
  log.level = 'warn';

  /** What the system of record says of the freelancer: the scenario's history, as one line. */
  function snapshotOf(s: typeof known): string {
    const paid = s.phases[0]!.filter(
      (e) => e.family === 'contract' && (e.event as ContractEvent).action === 'MILESTONE_PAID',
    );
    const c = paid[0]!.event as ContractEvent;
    return JSON.stringify({
      accountId: s.accountId,
      createdAt: t0 - 730 * DAY,
      accountType: 'FREELANCER',
      identityVerifiedAt: t0 - 728 * DAY,
      stats: { at: t0 - DAY, completedContracts: 12, paidHours: 2600, earnings: 98000 },
      openContracts: [
        {
          contractId: c.contractId,
          clientAccountId: c.clientAccountId,
          freelancerAccountId: c.freelancerAccountId,
          startedAt: new Date(t0 - 425 * DAY).toISOString(),
          lastPaidAt: Math.max(...paid.map((e) => e.event.occurredAt)),
        },
      ],
    });
  }

  beforeAll(async () => {
    h = await new Harness(isolatedConfig('bootstrap')).start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('loads every mitigation before the first live event, idempotently, and reports bad lines by number', async () => {
    expect(await h.dumpKeys()).toEqual({});
    const file = join(dir, 'snapshot.ndjson');
    writeFileSync(file, `${snapshotOf(known)}\n{"accountId": "x", "createdAt": "last year"}\n`);
    const first = await publishSnapshot({ loaded: h.loaded, file, log });
    expect(first).toMatchObject({ accounts: 1, events: 5, skipped: 0 });
    expect(first.rejected).toEqual([
      { line: 2, error: 'createdAt: expected epoch milliseconds or an ISO-8601 UTC time' },
    ]);
    await h.settle();
    const once = await h.dumpKeys();
    // run again (a resumed run starts again anywhere): nothing changes
    await publishSnapshot({ loaded: h.loaded, file, log });
    await h.settle();
    expect(await h.dumpKeys()).toEqual(once);
    expect((await publishSnapshot({ loaded: h.loaded, file, log, fromLine: 2 })).skipped).toBe(1);

    await h.publishPhases([[...known.phases[1]!, ...unknown.phases[1]!]]);
    const flags = await h.flags();
    expect(flags.filter((f) => f.accountId === known.accountId)).toEqual([]);
    const stored = await h.proc.storedAccount(known.accountId);
    const [decision] = scoreAccount(stored, stored.watermark, h.proc.activePolicy);
    expect(decision!.mitigations.map((m) => m.id)).toEqual([
      'tenure',
      'verified_identity',
      'contract_history',
      'long_running_contract',
    ]);
    expect(decision!.historyUnknown).toBeUndefined();
    const e = await explainStored(
      known.accountId,
      h.proc.backend,
      h.proc.activePolicy,
      await GeoIp.open(h.config.maxmind),
    );
    expect(e.historyUnknown).toBe(false);
    expect(formatExplanation(e)).not.toMatch(/history unknown/);
  });

  it('without the bootstrap the same story raises no high flag, and explain says the history is unknown', async () => {
    const flags = (await h.flags()).filter((f) => f.accountId === unknown.accountId);
    expect(flags.filter((f) => f.severity === 'high')).toEqual([]);
    const e = await explainStored(
      unknown.accountId,
      h.proc.backend,
      h.proc.activePolicy,
      await GeoIp.open(h.config.maxmind),
    );
    expect(e.historyUnknown).toBe(true);
    expect(e.mitigations).toEqual([]);
    expect(formatExplanation(e)).toMatch(/history unknown to fairflag: no account creation event seen/);
  });
});
