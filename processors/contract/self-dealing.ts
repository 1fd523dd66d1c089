import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';
import type { ValueKind } from '../../src/features/model.js';

const SHARED: { kind: ValueKind; label: string }[] = [
  { kind: 'device', label: 'device' },
  { kind: 'personalIp', label: 'IP' },
  { kind: 'instrument', label: 'payment instrument' },
];

export const selfDealing = defineSignal({
  id: 'contract.self_dealing',
  family: 'contract',
  weak: false,
  description:
    'Client and freelancer share a device, a non-anonymizer IP or a payment instrument (feedback building, fee circumvention).',
  params: z.strictObject({
    ...signalBase,
    threshold: positiveInt().default(1),
    window: duration().default(90 * 86_400_000),
  }),
  pairwise: true,
  triggeredBy: (e) => e.family === 'contract',
  needs: (p) => ({
    account: SHARED.map(({ kind }) => ({ q: 'distinct' as const, kind, from: -p.window, maxValues: 50 })),
  }),
  evaluate({ event, subject, counterpart }, p) {
    if (!counterpart) return { status: 'skipped', reason: 'no counterpart on this event' };
    const shared: string[] = [];
    for (const { kind, label } of SHARED) {
      const theirs = new Set(counterpart.distinct(kind, p.window, 50).values);
      for (const v of subject.distinct(kind, p.window, 50).values)
        if (theirs.has(v)) shared.push(`${label} ${v}`);
    }
    const m = {
      observed: shared.length,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: shared.length
        ? `shares with counterpart ${counterpart.accountId}: ${shared.join(', ')}`
        : `nothing shared with counterpart ${counterpart.accountId}`,
    };
    return shared.length >= p.threshold
      ? { status: 'fired', evidenceEventIds: [event.event.eventId], ...m }
      : { status: 'below', ...m };
  },
});
