import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const failedBurst = defineSignal({
  id: 'login.failed_burst',
  family: 'login',
  weak: false,
  description: 'Failed logins for the account in a short window (password guessing, credential stuffing).',
  params: z.strictObject({
    ...signalBase,
    threshold: positiveInt().default(10),
    window: duration().default(900_000),
  }),
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'FAILURE',
  needs: (p) => ({ account: [{ q: 'count', kind: 'loginFailed', from: -p.window, to: 0, maxIds: 50 }] }),
  evaluate({ subject }, p) {
    const failed = subject.count('loginFailed', p.window, 50);
    const m = {
      observed: failed.n,
      threshold: p.threshold,
      window: formatDuration(p.window),
      summary: `${failed.n} failed logins in ${formatDuration(p.window)}`,
    };
    return failed.n >= p.threshold
      ? { status: 'fired', evidenceEventIds: failed.ids, ...m }
      : { status: 'below', ...m };
  },
});
