// The shape shared by signals that count one kind of event in a window (failed logins, payment
// methods added, failed verifications, disputes): observed = the count, evidence = those events.
import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../config/params.js';
import { defineSignal, type SignalDefinition, type SignalFamily } from '../src/domain/signal.js';
import type { EventKind } from '../src/features/model.js';

export function eventCountSignal(spec: {
  id: string;
  family: SignalFamily;
  description: string;
  kind: EventKind;
  /** What is counted, in the summary: "failed logins". */
  counted: string;
  defaults: { threshold: number; window: number };
  maxIds: number;
  triggeredBy: SignalDefinition['triggeredBy'];
}) {
  return defineSignal({
    id: spec.id,
    family: spec.family,
    weak: false,
    description: spec.description,
    params: z.strictObject({
      ...signalBase,
      threshold: positiveInt().default(spec.defaults.threshold),
      window: duration().default(spec.defaults.window),
    }),
    triggeredBy: spec.triggeredBy,
    needs: (p) => ({
      account: [{ q: 'count', kind: spec.kind, from: -p.window, to: 0, maxIds: spec.maxIds }],
    }),
    evaluate({ subject }, p) {
      const events = subject.count(spec.kind, p.window, spec.maxIds);
      const m = {
        observed: events.n,
        threshold: p.threshold,
        window: formatDuration(p.window),
        summary: `${events.n} ${spec.counted} in ${formatDuration(p.window)}`,
      };
      return events.n >= p.threshold
        ? { status: 'fired', evidenceEventIds: events.ids, ...m }
        : { status: 'below', ...m };
    },
  });
}
