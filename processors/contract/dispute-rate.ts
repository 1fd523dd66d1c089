import { eventCountSignal } from '../event-count.js';

export const disputeRate = eventCountSignal({
  id: 'contract.dispute_rate',
  family: 'contract',
  description: 'Disputes and refunds against the freelancer in a window.',
  kind: 'dispute',
  counted: 'disputes or refunds against the freelancer',
  defaults: { threshold: 3, window: 30 * 86_400_000 },
  maxIds: 20,
  triggeredBy: (e, role) =>
    role === 'freelancer' &&
    e.family === 'contract' &&
    (e.event.action === 'DISPUTED' || e.event.action === 'REFUNDED'),
});
