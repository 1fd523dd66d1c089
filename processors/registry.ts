// The one list to touch when adding a signal: its file, its config block, its test, and here.
import { isUnknownStep, type EnrichedEvent } from '../src/domain/events.js';
import type { AnySignal } from '../src/domain/signal.js';
import { planAccount } from './account/index.js';
import { disputeRate } from './contract/dispute-rate.js';
import { firstPaymentThenDispute } from './contract/first-payment-then-dispute.js';
import { planContract } from './contract/index.js';
import { rapidFeedbackLoop } from './contract/rapid-feedback-loop.js';
import { selfDealing } from './contract/self-dealing.js';
import { anonymizerShare } from './ip/anonymizer-share.js';
import { churn } from './ip/churn.js';
import { planIpObservation } from './ip/index.js';
import { sharedByAccounts } from './ip/shared-by-accounts.js';
import { concurrentDistantSessions } from './login/concurrent-distant-sessions.js';
import { failedBurst } from './login/failed-burst.js';
import { impossibleTravel } from './login/impossible-travel.js';
import { planLogin } from './login/index.js';
import { newCountry } from './login/new-country.js';
import { newDevice } from './login/new-device.js';
import { addedAfterRiskyLogin } from './payment/added-after-risky-login.js';
import { failedVerifications } from './payment/failed-verifications.js';
import { planPaymentMethod } from './payment/index.js';
import { methodVelocity } from './payment/method-velocity.js';
import { sharedInstrument } from './payment/shared-instrument.js';
import type { EventPlan } from './plan.js';

export const SIGNALS: readonly AnySignal[] = [
  failedBurst,
  newCountry,
  impossibleTravel,
  newDevice,
  concurrentDistantSessions,
  anonymizerShare,
  churn,
  sharedByAccounts,
  methodVelocity,
  failedVerifications,
  sharedInstrument,
  addedAfterRiskyLogin,
  selfDealing,
  rapidFeedbackLoop,
  disputeRate,
  firstPaymentThenDispute,
];

export function planEvent(e: EnrichedEvent): EventPlan {
  // a step added after this version (docs/schemas.md): remembered by its id, nothing else
  if (isUnknownStep(e)) {
    const c = e.family === 'contract' ? e.event : undefined;
    const role = !c ? 'account' : c.accountId === c.clientAccountId ? 'client' : 'freelancer';
    return { subjects: [{ accountId: e.event.accountId, role, ops: [] }], entities: [] };
  }
  switch (e.family) {
    case 'login':
      return planLogin(e);
    case 'ip':
      return planIpObservation(e);
    case 'payment':
      return planPaymentMethod(e);
    case 'contract':
      return planContract(e);
    case 'account':
      return planAccount(e);
  }
}
