// Semantic checks on decoded events: Avro guarantees the types, not that the values make sense.
// Each failure names the field and the bad value; the runner dead-letters it with this text.
import type { Config } from '../../config/schema.js';
import { isValidIp } from '../enrich/geoip.js';
import type { ActivityEvent, Family, ReviewOutcome } from '../domain/events.js';

export class InvalidEventError extends Error {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'InvalidEventError';
  }
}

type Limits = Config['validation'];

// Ids become parts of Redis keys and members: no separators, no whitespace, no braces.
const ID = /^[A-Za-z0-9._:@/+=-]+$/;
const MAX_TEXT = 256;

const show = (v: unknown) => {
  const s = typeof v === 'string' ? JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v) : String(v);
  return typeof v === 'string' && v.length > 60 ? `${s} (${v.length} chars)` : s;
};

function id(field: string, v: string, limits: Limits): void {
  if (v.length === 0) throw new InvalidEventError(field, 'must not be empty');
  if (v.length > limits.maxIdLength) {
    throw new InvalidEventError(field, `longer than ${limits.maxIdLength} characters: ${show(v)}`);
  }
  if (!ID.test(v))
    throw new InvalidEventError(field, `expected letters, digits and . _ : @ / + = -, got ${show(v)}`);
}

function optionalId(field: string, v: string | null, limits: Limits): void {
  if (v !== null) id(field, v, limits);
}

function text(field: string, v: string | null): void {
  if (v === null) return;
  if (v.length === 0) throw new InvalidEventError(field, 'must not be empty');
  if (v.length > MAX_TEXT)
    throw new InvalidEventError(field, `longer than ${MAX_TEXT} characters: ${show(v)}`);
}

function ip(field: string, v: string | null): void {
  if (v === null) return;
  // "fe80::1%en-0": an interface on the sender's host, not a network address (and ipaddr.js
  // refuses some zone ids Node's isIP accepts)
  if (v.includes('%'))
    throw new InvalidEventError(field, `an IPv6 zone id (after "%") is not accepted: ${show(v)}`);
  if (!isValidIp(v)) throw new InvalidEventError(field, `not an IPv4 or IPv6 address: ${show(v)}`);
}

function amount(field: string, v: number | null): void {
  if (v === null) return;
  if (!Number.isFinite(v)) throw new InvalidEventError(field, `expected a finite number, got ${show(v)}`);
  if (v < 0) throw new InvalidEventError(field, `must not be negative, got ${show(v)}`);
}

function time(field: string, v: number, limits: Limits, now: number): void {
  const min = Date.parse(limits.minEventTime);
  if (!Number.isFinite(v) || v < min) {
    throw new InvalidEventError(field, `${show(v)} is before ${limits.minEventTime}`);
  }
  // Avro longs always are; a JSON file given to replay may not be. The stores keep whole
  // milliseconds, so a fraction would be rounded in some places and kept in others.
  if (!Number.isInteger(v)) {
    throw new InvalidEventError(field, `${show(v)} is not a whole number of milliseconds`);
  }
  if (v > now + limits.maxFutureSkew) {
    // beyond the last representable date (+275760) toISOString() throws: show the number instead
    const when = Number.isNaN(new Date(v).getTime()) ? show(v) : new Date(v).toISOString();
    throw new InvalidEventError(field, `${when} is more than ${limits.maxFutureSkew / 1000}s in the future`);
  }
}

/** Checks a decoded record of a family and returns it typed; throws InvalidEventError. */
export function validateActivity(
  family: Family,
  raw: unknown,
  limits: Limits,
  now = Date.now(),
): ActivityEvent {
  const e = raw as ActivityEvent['event'];
  id('eventId', e.eventId, limits);
  id('accountId', e.accountId, limits);
  time('occurredAt', e.occurredAt, limits, now);
  switch (family) {
    case 'login': {
      const l = e as Extract<ActivityEvent, { family: 'login' }>['event'];
      ip('ip', l.ip);
      optionalId('deviceId', l.deviceId, limits);
      optionalId('sessionId', l.sessionId, limits);
      return { family, event: l };
    }
    case 'ip': {
      const o = e as Extract<ActivityEvent, { family: 'ip' }>['event'];
      ip('ip', o.ip);
      text('source', o.source);
      optionalId('deviceId', o.deviceId, limits);
      optionalId('sessionId', o.sessionId, limits);
      return { family, event: o };
    }
    case 'payment': {
      const p = e as Extract<ActivityEvent, { family: 'payment' }>['event'];
      id('methodId', p.methodId, limits);
      id('instrumentFingerprint', p.instrumentFingerprint, limits);
      ip('ip', p.ip);
      optionalId('deviceId', p.deviceId, limits);
      return { family, event: p };
    }
    case 'contract': {
      const c = e as Extract<ActivityEvent, { family: 'contract' }>['event'];
      id('contractId', c.contractId, limits);
      id('clientAccountId', c.clientAccountId, limits);
      id('freelancerAccountId', c.freelancerAccountId, limits);
      if (c.clientAccountId === c.freelancerAccountId) {
        throw new InvalidEventError(
          'freelancerAccountId',
          `same account as the client: ${show(c.clientAccountId)}`,
        );
      }
      if (c.accountId !== c.clientAccountId && c.accountId !== c.freelancerAccountId) {
        throw new InvalidEventError(
          'accountId',
          `${show(c.accountId)} is neither the client nor the freelancer`,
        );
      }
      amount('amount', c.amount);
      text('currency', c.currency);
      if (c.rating !== null && (c.rating < 1 || c.rating > 5)) {
        throw new InvalidEventError('rating', `expected 1 to 5, got ${show(c.rating)}`);
      }
      ip('ip', c.ip);
      optionalId('deviceId', c.deviceId, limits);
      return { family, event: c };
    }
    case 'account': {
      const a = e as Extract<ActivityEvent, { family: 'account' }>['event'];
      if (a.lifetimeCompletedContracts !== null && a.lifetimeCompletedContracts < 0) {
        throw new InvalidEventError(
          'lifetimeCompletedContracts',
          `must not be negative, got ${a.lifetimeCompletedContracts}`,
        );
      }
      amount('lifetimePaidHours', a.lifetimePaidHours);
      amount('lifetimeEarnings', a.lifetimeEarnings);
      ip('ip', a.ip);
      optionalId('deviceId', a.deviceId, limits);
      return { family, event: a };
    }
  }
}

export function validateOutcome(raw: unknown, limits: Limits, now = Date.now()): ReviewOutcome {
  const o = raw as ReviewOutcome;
  id('outcomeId', o.outcomeId, limits);
  id('flagId', o.flagId, limits);
  id('accountId', o.accountId, limits);
  text('noteCategory', o.noteCategory);
  time('decidedAt', o.decidedAt, limits, now);
  return o;
}
