import { z } from 'zod';
import { duration, formatDuration, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';
import { novelty } from './novelty.js';

export const newDevice = defineSignal({
  id: 'login.new_device',
  family: 'login',
  weak: true,
  description: "Successful login from a device unseen in the account's history window.",
  params: z.strictObject({ ...signalBase, window: duration().default(90 * 86_400_000) }),
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'SUCCESS' && e.event.deviceId !== null,
  needs: (p) => ({ account: [{ q: 'distinct', kind: 'device', from: -p.window, maxValues: 10 }] }),
  evaluate({ event, subject }, p) {
    const devices = subject.distinct('device', p.window, 10);
    const n = novelty(subject, 'device', devices.n, p.window);
    if (n.kind === 'unknown') return { status: 'skipped', reason: n.reason };
    const m = {
      observed: n.kind === 'new' ? 1 : 0,
      threshold: 1,
      window: formatDuration(p.window),
      summary:
        n.kind === 'new'
          ? `device unseen in ${formatDuration(p.window)}; ${devices.n - 1} other device(s) known`
          : `device already seen in ${formatDuration(p.window)}`,
    };
    return n.kind === 'new'
      ? { status: 'fired', evidenceEventIds: [event.event.eventId], ...m }
      : { status: 'below', ...m };
  },
});
