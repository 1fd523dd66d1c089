// The reference scenarios of shared/scenarios.md as events, built on MaxMind's test networks.
// Used by the demo, the integration tests and replay (as NDJSON). Times are relative to t0.
import type {
  AccountEvent,
  ActivityEvent,
  ContractEvent,
  IpObservationEvent,
  LoginEvent,
  PaymentMethodEvent,
} from '../domain/events.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export interface Scenario {
  name: string;
  title: string;
  /** The account the expectation is about. */
  accountId: string;
  /**
   * Phases in time order: everything of a phase is consumed before the next is published, as it
   * would be in production where years separate an account's creation from today's logins.
   */
  phases: ActivityEvent[][];
  expected: string;
}

/** Where event ids come from: each call gives a new one. */
export interface IdSource {
  next(): string;
}

class Ids implements IdSource {
  private n = 0;
  constructor(private readonly prefix: string) {}
  next(): string {
    return `${this.prefix}-${String(++this.n).padStart(4, '0')}`;
  }
}

// Event builders with the schemas' defaults (null for absent optional fields), shared by the
// scenarios and the generated workloads of the tests.
export const login = (
  ids: IdSource,
  accountId: string,
  at: number,
  ip: string,
  over: Partial<LoginEvent> = {},
): ActivityEvent => ({
  family: 'login',
  event: {
    eventId: ids.next(),
    accountId,
    occurredAt: at,
    outcome: 'SUCCESS',
    ip,
    deviceId: null,
    sessionId: null,
    ...over,
  },
});

export const account = (
  ids: IdSource,
  accountId: string,
  at: number,
  over: Partial<AccountEvent>,
): ActivityEvent => ({
  family: 'account',
  event: {
    eventId: ids.next(),
    accountId,
    occurredAt: at,
    action: 'CREATED',
    accountType: null,
    lifetimeCompletedContracts: null,
    lifetimePaidHours: null,
    lifetimeEarnings: null,
    ip: null,
    deviceId: null,
    ...over,
  },
});

export const contract = (
  ids: IdSource,
  at: number,
  over: Partial<ContractEvent> &
    Pick<ContractEvent, 'accountId' | 'contractId' | 'clientAccountId' | 'freelancerAccountId' | 'action'>,
): ActivityEvent => ({
  family: 'contract',
  event: {
    eventId: ids.next(),
    occurredAt: at,
    amount: null,
    currency: null,
    rating: null,
    disputeReason: null,
    ip: null,
    deviceId: null,
    ...over,
  },
});

export const payment = (
  ids: IdSource,
  accountId: string,
  at: number,
  over: Partial<PaymentMethodEvent>,
): ActivityEvent => ({
  family: 'payment',
  event: {
    eventId: ids.next(),
    accountId,
    occurredAt: at,
    action: 'ADDED',
    methodId: 'pm-1',
    methodType: 'CARD',
    instrumentFingerprint: 'fp-1',
    ip: null,
    deviceId: null,
    ...over,
  },
});

export const ipObservation = (
  ids: IdSource,
  accountId: string,
  at: number,
  ip: string,
  over: Partial<IpObservationEvent> = {},
): ActivityEvent => ({
  family: 'ip',
  event: {
    eventId: ids.next(),
    accountId,
    occurredAt: at,
    ip,
    source: 'web',
    deviceId: null,
    sessionId: null,
    ...over,
  },
});

/**
 * A. The travelling freelancer: two years of tenure, verified, a 14-month contract paid weekly;
 * ten days of logins from London, Linköping and Melbourne, about 70% through VPN exits.
 * Expected: no flag.
 */
export function travellingFreelancer(t0: number, runId: string): Scenario {
  const ids = new Ids(`evt-a-${runId}`);
  const me = `acct-travel-${runId}`;
  const client = `acct-client-${runId}`;
  const contractId = `ctr-a-${runId}`;
  const history: ActivityEvent[] = [
    account(ids, me, t0 - 730 * DAY, { action: 'CREATED', accountType: 'FREELANCER' }),
    account(ids, me, t0 - 728 * DAY, { action: 'IDENTITY_VERIFIED' }),
    account(ids, client, t0 - 900 * DAY, { action: 'CREATED', accountType: 'CLIENT' }),
    contract(ids, t0 - 425 * DAY, {
      accountId: client,
      contractId,
      clientAccountId: client,
      freelancerAccountId: me,
      action: 'STARTED',
    }),
  ];
  const recent: ActivityEvent[] = [];
  // a payment released every week since the contract began
  for (let at = t0 - 418 * DAY; at < t0 + 10 * DAY; at += 7 * DAY) {
    const step = contract(ids, at, {
      accountId: client,
      contractId,
      clientAccountId: client,
      freelancerAccountId: me,
      action: 'MILESTONE_PAID',
      amount: 1200,
      currency: 'USD',
    });
    (at < t0 ? history : recent).push(step);
  }
  history.push(
    account(ids, me, t0 - DAY, {
      action: 'STATS_UPDATED',
      lifetimeCompletedContracts: 12,
      lifetimePaidHours: 2600,
      lifetimeEarnings: 98_000,
    }),
  );
  const cities = [
    { days: [1, 2, 3], ips: ['81.2.69.142', '81.2.69.143', '81.2.69.150'] }, // London
    { days: [4, 5, 6], ips: ['89.160.20.112', '89.160.20.113', '89.160.20.130'] }, // Linköping
    { days: [7, 8, 9, 10], ips: ['214.0.1.1', '214.0.1.20', '214.0.1.40', '214.0.1.60'] }, // Melbourne
  ];
  let n = 0;
  for (const city of cities) {
    city.days.forEach((day, i) => {
      // a flight day: nothing between the last login before it and an evening login after it
      const hours = day === 7 ? [21, 23] : day === 4 ? [19, 22] : [8, 20];
      for (const h of hours) {
        const at = t0 + (day - 1) * DAY + h * HOUR;
        const direct = n % 10 === 1 || n % 10 === 4 || n % 10 === 7; // 3 in 10 without VPN
        const ip = direct ? city.ips[i]! : `1.2.0.${day * 10 + (h % 10)}`;
        const sessionId = `${me}-s${n}`;
        recent.push(login(ids, me, at, ip, { deviceId: 'dev-a-laptop', sessionId }));
        recent.push(
          login(ids, me, at + HOUR, ip, { outcome: 'LOGOUT', deviceId: 'dev-a-laptop', sessionId }),
        );
        n++;
      }
    });
  }
  recent.sort((a, b) => a.event.occurredAt - b.event.occurredAt);
  return {
    name: 'A',
    title: 'The travelling freelancer',
    accountId: me,
    phases: [history, recent],
    expected:
      'no flag; weak signals visible in explain with tenure, verified identity and the long-running contract',
  };
}

/**
 * B. Account takeover: three years of tenure, verified, daily logins from Milton on one device;
 * then 12 failed logins from Changchun, a success there on a new device, and two new cards.
 * Expected: exactly one high-severity flag in the account-security queue.
 */
export function accountTakeover(t0: number, runId: string): Scenario {
  const ids = new Ids(`evt-b-${runId}`);
  const me = `acct-takeover-${runId}`;
  const milton = ['216.160.83.56', '216.160.83.57', '216.160.83.58'];
  const history: ActivityEvent[] = [
    account(ids, me, t0 - 3 * 365 * DAY, { action: 'CREATED', accountType: 'FREELANCER' }),
    account(ids, me, t0 - 3 * 365 * DAY + DAY, { action: 'IDENTITY_VERIFIED' }),
  ];
  for (let d = 14; d >= 1; d--) {
    history.push(
      login(ids, me, t0 - d * DAY, milton[d % 3]!, { deviceId: 'dev-b-phone', sessionId: `${me}-h${d}` }),
    );
  }
  const incident: ActivityEvent[] = [
    login(ids, me, t0, milton[0]!, { deviceId: 'dev-b-phone', sessionId: `${me}-t0` }),
  ];
  for (let i = 0; i < 12; i++) {
    const at = t0 + 40 * MINUTE + Math.round((i * 15 * MINUTE) / 11);
    incident.push(login(ids, me, at, `175.16.199.${10 + i}`, { outcome: 'FAILURE' }));
  }
  incident.push(
    login(ids, me, t0 + 58 * MINUTE, '175.16.199.40', { deviceId: 'dev-x-unknown', sessionId: `${me}-x` }),
    payment(ids, me, t0 + 65 * MINUTE, {
      methodId: 'pm-x1',
      instrumentFingerprint: `fp-x1-${runId}`,
      ip: '175.16.199.40',
      deviceId: 'dev-x-unknown',
    }),
    payment(ids, me, t0 + 70 * MINUTE, {
      methodId: 'pm-x2',
      instrumentFingerprint: `fp-x2-${runId}`,
      ip: '175.16.199.40',
      deviceId: 'dev-x-unknown',
    }),
    payment(ids, me, t0 + 70 * MINUTE + 5_000, {
      action: 'VERIFICATION_FAILED',
      methodId: 'pm-x2',
      instrumentFingerprint: `fp-x2-${runId}`,
      ip: '175.16.199.40',
      deviceId: 'dev-x-unknown',
    }),
  );
  return {
    name: 'B',
    title: 'Account takeover',
    accountId: me,
    phases: [history, incident],
    expected: 'exactly one flag: review, account_security, severity high',
  };
}
