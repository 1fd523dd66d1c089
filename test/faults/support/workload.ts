// The fault tests' workload: the reference scenarios, small rings that raise flags across several
// families, and a stream of a few thousand events of independent accounts across all five
// families. Built so that the final features and flags do not depend on how Kafka interleaves
// partitions and topics, only on the events themselves; a fault may then change the timing and
// the batch boundaries, and the result must still equal an undisturbed reference.
//
// - Rings (several accounts sharing an IP, a device or a card, or both sides of a contract) are
//   published in phases, one family per phase, each consumed before the next, and every ring is
//   on one partition (its account ids are chosen so): its accounts' events are processed in
//   publish order.
// - The stream's accounts each appear on ONE topic only and share nothing (own IPs, devices,
//   cards, contract pairs): any interleaving of the stream gives the same result. Faults happen
//   while the stream flows.
// - Every account's events of one family are in event-time order (no late events).
import { seeded } from '../../../bench/workload.js';
import { partitionOfKey } from '../../../src/kafka/processor.js';
import * as events from '../../../src/scenarios/reference.js';
import type { IdSource } from '../../../src/scenarios/reference.js';
import type {
  AccountEvent,
  ActivityEvent,
  ContractEvent,
  IpObservationEvent,
  LoginEvent,
  PaymentMethodEvent,
} from '../../../src/domain/events.js';
import {
  DAY,
  HOUR,
  MINUTE,
  accountTakeover,
  travellingFreelancer,
} from '../../../src/scenarios/reference.js';

export interface Planned {
  event: ActivityEvent;
  /** The partition its account is on (rings): the producer's partitioner places it by key. */
  partition?: number;
}

export interface Workload {
  runId: string;
  /** Phases published before the stream, each consumed before the next. */
  before: Planned[][];
  /** Independent accounts, each on one topic, in event-time order. */
  stream: Planned[];
  /** Phases published after the stream has been consumed. */
  after: Planned[][];
  /** Accounts the workload is expected to flag somewhere (a sanity check that it does flag). */
  expectFlagged: string[];
}

export function allEvents(w: Workload): Planned[] {
  return [...w.before.flat(), ...w.stream, ...w.after.flat()];
}

/** IP addresses, each handed out once (shared entities only where a ring shares one on purpose). */
class Ips {
  private jpNext = 0;
  private readonly foreignPool: string[] = [];
  constructor() {
    // located networks of MaxMind's test databases, away from the addresses the reference scenarios use
    for (let i = 100; i <= 254; i++) this.foreignPool.push(`175.16.199.${i}`); // Changchun, CN
    for (let i = 100; i <= 254; i++) this.foreignPool.push(`214.0.1.${i}`); // Melbourne, AU
    for (let i = 1; i <= 254; i++) this.foreignPool.push(`202.196.224.${i}`); // PH
    for (let i = 131; i <= 254; i++) this.foreignPool.push(`89.160.20.${i}`); // Linköping, SE
  }
  /** A residential address in Japan (2001:218::/32 is located in the test City database). */
  home(): string {
    const n = ++this.jpNext;
    return `2001:218:${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}::1`;
  }
  /** A located address in another country. */
  foreign(): string {
    const ip = this.foreignPool.shift();
    if (!ip) throw new Error('workload: out of foreign test addresses');
    return ip;
  }
  /** A commercial VPN exit (an anonymizer: never a shared entity). */
  vpn(n: number): string {
    return `1.2.0.${(n % 250) + 1}`;
  }
}

class Builder {
  private n = 0;
  constructor(
    readonly runId: string,
    private readonly partitions: number,
  ) {}
  id(kind: string): string {
    return `ff-${this.runId}-${kind}-${(++this.n).toString(36)}`;
  }
  /**
   * An account id; given a partition, one the default partitioner puts there (a ring's accounts
   * are all on one partition, so its events are consumed in publish order).
   */
  acct(name: string, partition?: number): string {
    const base = `acct-${this.runId}-${name}`;
    if (partition === undefined) return base;
    for (let i = 0; ; i++) {
      const id = i ? `${base}-${i}` : base;
      if (partitionOfKey(id, this.partitions) === partition) return id;
    }
  }
  private ids(kind: string): IdSource {
    return { next: () => this.id(kind) };
  }
  login(accountId: string, at: number, ip: string, over: Partial<LoginEvent> = {}): ActivityEvent {
    return events.login(this.ids('l'), accountId, at, ip, over);
  }
  ip(accountId: string, at: number, ip: string, over: Partial<IpObservationEvent> = {}): ActivityEvent {
    return events.ipObservation(this.ids('i'), accountId, at, ip, over);
  }
  payment(accountId: string, at: number, over: Partial<PaymentMethodEvent>): ActivityEvent {
    return events.payment(this.ids('p'), accountId, at, {
      instrumentFingerprint: `fp-${this.runId}-x`,
      ...over,
    });
  }
  contract(
    at: number,
    over: Partial<ContractEvent> &
      Pick<ContractEvent, 'accountId' | 'contractId' | 'clientAccountId' | 'freelancerAccountId' | 'action'>,
  ): ActivityEvent {
    return events.contract(this.ids('c'), at, over);
  }
  account(accountId: string, at: number, over: Partial<AccountEvent>): ActivityEvent {
    return events.account(this.ids('a'), accountId, at, over);
  }
}

export interface WorkloadOptions {
  seed?: number;
  partitions?: number;
  /** Rings of each kind (multi-account, feedback, takeover, agency). */
  rings?: number;
  /** Scale of the stream: 1 gives about 2,900 events. */
  streamScale?: number;
}

export function buildWorkload(opts: WorkloadOptions = {}): Workload {
  const seed = opts.seed ?? 7;
  const partitions = opts.partitions ?? 3;
  const rings = opts.rings ?? 8;
  const scale = opts.streamScale ?? 1;
  // deterministic, so a failing run can be reproduced from its seed
  const rnd = seeded(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const now = Date.now();
  const runId = `${now.toString(36)}${seed.toString(36)}`;
  const b = new Builder(runId, partitions);
  const ips = new Ips();
  const T = now - 4 * DAY;
  const expectFlagged: string[] = [];

  // ---- reference scenarios (keyed by account: the producer's partitioner places them)
  const a = travellingFreelancer(now - 11 * DAY, runId);
  const ato = accountTakeover(now - 2 * HOUR, runId);
  expectFlagged.push(ato.accountId);

  // ---- rings, one family per phase, each ring's accounts on one partition
  const phases: Planned[][] = [[], [], [], [], []]; // account, login, ip, payment, contract
  const [ACCOUNT, LOGIN, IP, PAYMENT, CONTRACT] = [0, 1, 2, 3, 4] as const;
  phases[ACCOUNT]!.push(
    ...a.phases[0]!.map((event) => ({ event })),
    ...ato.phases[0]!.map((event) => ({ event })),
  );
  let ring = 0;
  const add = (phase: number, partition: number, ...events: ActivityEvent[]) =>
    phases[phase]!.push(...events.map((event) => ({ event, partition })));

  for (let r = 0; r < rings; r++) {
    // multiple accounts: five accounts on one home IP, each adding the same card
    {
      const p = ring++ % partitions;
      const ip = ips.home();
      const fp = `fp-${runId}-multi${r}`;
      for (let k = 0; k < 5; k++) {
        const acct = b.acct(`multi${r}-${k}`, p);
        add(ACCOUNT, p, b.account(acct, T - 20 * DAY + k * HOUR, { accountType: 'FREELANCER' }));
        add(LOGIN, p, b.login(acct, T + k * 10 * MINUTE, ip, { deviceId: `dev-${runId}-m${r}-${k}` }));
        add(IP, p, b.ip(acct, T + HOUR + k * 10 * MINUTE, ip));
        add(
          PAYMENT,
          p,
          b.payment(acct, T + 2 * HOUR + k * 10 * MINUTE, { methodId: `pm-${k}`, instrumentFingerprint: fp }),
        );
        if (k >= 3) expectFlagged.push(acct);
      }
    }
    // feedback building: client and freelancer on one device, three short top-rated contracts
    {
      const p = ring++ % partitions;
      const client = b.acct(`fbc${r}`, p);
      const free = b.acct(`fbf${r}`, p);
      const device = `dev-${runId}-fb${r}`;
      add(ACCOUNT, p, b.account(client, T - 60 * DAY, { accountType: 'CLIENT' }));
      add(ACCOUNT, p, b.account(free, T - 60 * DAY, { accountType: 'FREELANCER' }));
      add(LOGIN, p, b.login(client, T, ips.home(), { deviceId: device }));
      add(LOGIN, p, b.login(free, T + 5 * MINUTE, ips.home(), { deviceId: device }));
      for (let k = 0; k < 3; k++) {
        const side = { accountId: client, clientAccountId: client, freelancerAccountId: free };
        const contractId = `ctr-${runId}-fb${r}-${k}`;
        const t = T + HOUR + k * DAY;
        add(
          CONTRACT,
          p,
          b.contract(t, { ...side, contractId, action: 'STARTED' }),
          b.contract(t + 2 * HOUR, {
            ...side,
            contractId,
            action: 'MILESTONE_PAID',
            amount: 100,
            currency: 'USD',
          }),
          b.contract(t + 20 * HOUR, { ...side, contractId, action: 'ENDED', rating: 5 }),
        );
      }
      expectFlagged.push(free);
    }
    // takeover: a verified veteran's daily logins at home, then a burst of failures abroad, a
    // success there on a new device, and new cards
    {
      const p = ring++ % partitions;
      const acct = b.acct(`ato${r}`, p);
      const home = ips.home();
      const abroad = ips.foreign();
      add(ACCOUNT, p, b.account(acct, T - 800 * DAY, { accountType: 'FREELANCER' }));
      add(ACCOUNT, p, b.account(acct, T - 799 * DAY, { action: 'IDENTITY_VERIFIED' }));
      for (let d = 8; d >= 1; d--) {
        const sessionId = `s-${runId}-ato${r}-${d}`;
        add(
          LOGIN,
          p,
          b.login(acct, T - d * DAY, home, { deviceId: `dev-${runId}-home${r}`, sessionId }),
          b.login(acct, T - d * DAY + HOUR, home, { outcome: 'LOGOUT', sessionId }),
        );
      }
      const t = T + 2 * HOUR;
      for (let k = 0; k < 11; k++)
        add(LOGIN, p, b.login(acct, t + k * MINUTE, abroad, { outcome: 'FAILURE' }));
      const dx = `dev-${runId}-x${r}`;
      add(LOGIN, p, b.login(acct, t + 15 * MINUTE, abroad, { deviceId: dx, sessionId: `s-${runId}-x${r}` }));
      const card = (k: number) => `fp-${runId}-ato${r}-${k}`;
      add(
        PAYMENT,
        p,
        b.payment(acct, t + 25 * MINUTE, {
          methodId: 'pm-x1',
          instrumentFingerprint: card(1),
          ip: abroad,
          deviceId: dx,
        }),
        b.payment(acct, t + 30 * MINUTE, {
          methodId: 'pm-x2',
          instrumentFingerprint: card(2),
          ip: abroad,
          deviceId: dx,
        }),
        b.payment(acct, t + 31 * MINUTE, {
          action: 'VERIFICATION_FAILED',
          methodId: 'pm-x2',
          instrumentFingerprint: card(2),
          ip: abroad,
          deviceId: dx,
        }),
      );
      expectFlagged.push(acct);
    }
    // a brand-new agency takes the first milestone and is disputed for non-delivery
    {
      const p = ring++ % partitions;
      const client = b.acct(`agc${r}`, p);
      const agency = b.acct(`agf${r}`, p);
      const side = { accountId: client, clientAccountId: client, freelancerAccountId: agency };
      const contractId = `ctr-${runId}-ag${r}`;
      add(ACCOUNT, p, b.account(client, T - 300 * DAY, { accountType: 'CLIENT' }));
      add(ACCOUNT, p, b.account(agency, T - 5 * DAY, { accountType: 'AGENCY' }));
      add(
        CONTRACT,
        p,
        b.contract(T + HOUR, { ...side, contractId, action: 'STARTED' }),
        b.contract(T + DAY, { ...side, contractId, action: 'MILESTONE_PAID', amount: 500, currency: 'USD' }),
        b.contract(T + 2 * DAY, { ...side, contractId, action: 'DISPUTED', disputeReason: 'NON_DELIVERY' }),
      );
      expectFlagged.push(agency);
    }
  }

  // ---- the stream: independent accounts, one topic each
  const stream: ActivityEvent[] = [];
  let vpn = 0;
  for (let i = 0; i < Math.round(150 * scale); i++) {
    // logins: sessions from home (sometimes abroad or through a VPN), some failure bursts
    const acct = b.acct(`sl${i}`);
    const home = ips.home();
    const abroad = rnd() < 0.2 ? ips.foreign() : undefined;
    const device = `dev-${runId}-sl${i}`;
    let t = T + int(0, 120) * MINUTE;
    if (rnd() < 0.1) {
      for (let k = 0; k < 11; k++)
        stream.push(b.login(acct, t + k * 30_000, ips.vpn(vpn++), { outcome: 'FAILURE' }));
      t += 10 * MINUTE;
    }
    for (let s = int(2, 4); s > 0; s--) {
      const ip = abroad && rnd() < 0.5 ? abroad : rnd() < 0.2 ? ips.vpn(vpn++) : home;
      const sessionId = `s-${runId}-sl${i}-${s}`;
      stream.push(b.login(acct, t, ip, { deviceId: device, sessionId }));
      stream.push(b.login(acct, t + int(10, 90) * MINUTE, ip, { outcome: 'LOGOUT', sessionId }));
      t += int(2, 14) * HOUR;
    }
  }
  for (let i = 0; i < Math.round(80 * scale); i++) {
    // IP observations: some accounts churn through many addresses or VPN exits
    const acct = b.acct(`si${i}`);
    const churn = rnd() < 0.3;
    let t = T + int(0, 600) * MINUTE;
    for (let k = int(churn ? 8 : 3, churn ? 12 : 6); k > 0; k--) {
      const ip = rnd() < 0.3 ? ips.vpn(vpn++) : ips.home();
      stream.push(
        b.ip(acct, t, ip, { deviceId: `dev-${runId}-si${i}`, source: pick(['web', 'api', 'mobile']) }),
      );
      t += int(5, 90) * MINUTE;
    }
  }
  for (let i = 0; i < Math.round(80 * scale); i++) {
    // payment methods: card testing (failed verifications) in about a third
    const acct = b.acct(`sp${i}`);
    const testing = rnd() < 0.35;
    let t = T + int(0, 900) * MINUTE;
    for (let k = 0; k < int(1, testing ? 5 : 2); k++) {
      const fp = `fp-${runId}-sp${i}-${k}`;
      stream.push(
        b.payment(acct, t, {
          methodId: `pm-${k}`,
          instrumentFingerprint: fp,
          methodType: pick(['CARD', 'WALLET']),
        }),
      );
      if (testing) {
        stream.push(
          b.payment(acct, t + 2 * MINUTE, {
            action: 'VERIFICATION_FAILED',
            methodId: `pm-${k}`,
            instrumentFingerprint: fp,
          }),
        );
      } else if (rnd() < 0.5) {
        stream.push(
          b.payment(acct, t + 2 * MINUTE, {
            action: 'VERIFICATION_SUCCEEDED',
            methodId: `pm-${k}`,
            instrumentFingerprint: fp,
          }),
        );
      }
      t += int(5, 40) * MINUTE;
    }
    if (!testing && rnd() < 0.3)
      stream.push(
        b.payment(acct, t + HOUR, {
          action: 'REMOVED',
          methodId: 'pm-0',
          instrumentFingerprint: `fp-${runId}-sp${i}-0`,
        }),
      );
  }
  for (let i = 0; i < Math.round(60 * scale); i++) {
    // contracts between an exclusive pair, every step by the client: normal, rapid top-rated
    // repeats (feedback building), or disputes
    const client = b.acct(`scc${i}`);
    const free = b.acct(`scf${i}`);
    const side = { accountId: client, clientAccountId: client, freelancerAccountId: free };
    const kind = pick(['normal', 'normal', 'rapid', 'disputes'] as const);
    let t = T + int(0, 300) * MINUTE;
    // five loops: 5/3 of the threshold x weight 1.5 reaches the review threshold on its own
    const n = kind === 'normal' ? 1 : kind === 'rapid' ? 5 : 3;
    for (let k = 0; k < n; k++) {
      const contractId = `ctr-${runId}-sc${i}-${k}`;
      stream.push(b.contract(t, { ...side, contractId, action: 'STARTED' }));
      stream.push(
        b.contract(t + 3 * HOUR, {
          ...side,
          contractId,
          action: 'MILESTONE_PAID',
          amount: int(50, 900),
          currency: 'USD',
        }),
      );
      if (kind === 'disputes')
        stream.push(
          b.contract(t + 6 * HOUR, {
            ...side,
            contractId,
            action: 'DISPUTED',
            disputeReason: pick(['QUALITY', 'SCOPE']),
          }),
        );
      else
        stream.push(
          b.contract(t + 10 * HOUR, {
            ...side,
            contractId,
            action: 'ENDED',
            rating: kind === 'rapid' ? 5 : int(3, 5),
          }),
        );
      t += 12 * HOUR;
    }
    if (kind === 'rapid') expectFlagged.push(free);
  }
  for (let i = 0; i < Math.round(100 * scale); i++) {
    // account lifecycle: creation, identity checks, lifetime stats
    const acct = b.acct(`sa${i}`);
    const t = T - int(1, 900) * DAY;
    stream.push(b.account(acct, t, { accountType: pick(['FREELANCER', 'CLIENT', 'AGENCY']) }));
    stream.push(
      b.account(acct, t + DAY, { action: pick(['IDENTITY_VERIFIED', 'IDENTITY_VERIFICATION_FAILED']) }),
    );
    stream.push(
      b.account(acct, T + int(0, 48) * HOUR, {
        action: 'STATS_UPDATED',
        lifetimeCompletedContracts: int(0, 80),
        lifetimePaidHours: rnd() < 0.2 ? null : int(0, 5000),
        lifetimeEarnings: int(0, 200_000),
      }),
    );
  }
  // as platform traffic arrives: by event time (each account's events stay in order)
  const ordered = stream
    .map((event, i) => ({ event, i }))
    .sort((x, y) => x.event.event.occurredAt - y.event.event.occurredAt || x.i - y.i)
    .map(({ event }) => ({ event }));

  return {
    runId,
    before: phases,
    stream: ordered,
    after: [[...a.phases[1]!, ...ato.phases[1]!].map((event) => ({ event }))],
    expectFlagged,
  };
}
