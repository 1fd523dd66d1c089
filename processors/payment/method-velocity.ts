import { eventCountSignal } from '../event-count.js';

export const methodVelocity = eventCountSignal({
  id: 'payment.method_velocity',
  family: 'payment',
  description: 'Payment methods added in a window.',
  kind: 'methodAdded',
  counted: 'payment methods added',
  defaults: { threshold: 3, window: 86_400_000 },
  maxIds: 20,
  triggeredBy: (e) => e.family === 'payment' && e.event.action === 'ADDED',
});
