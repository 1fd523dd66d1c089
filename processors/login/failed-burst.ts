import { eventCountSignal } from '../event-count.js';

export const failedBurst = eventCountSignal({
  id: 'login.failed_burst',
  family: 'login',
  description: 'Failed logins for the account in a short window (password guessing, credential stuffing).',
  kind: 'loginFailed',
  counted: 'failed logins',
  defaults: { threshold: 10, window: 900_000 },
  maxIds: 50,
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'FAILURE',
});
