import { eventCountSignal } from '../event-count.js';

export const failedVerifications = eventCountSignal({
  id: 'payment.failed_verifications',
  family: 'payment',
  description: 'Failed payment-method verifications in a window (card testing).',
  kind: 'verificationFailed',
  counted: 'failed payment-method verifications',
  defaults: { threshold: 3, window: 86_400_000 },
  maxIds: 20,
  triggeredBy: (e) => e.family === 'payment' && e.event.action === 'VERIFICATION_FAILED',
});
