// Building blocks for config validation. Every error names what is allowed, so that the loader
// can print "<path>: <what is allowed>, got <value>".
import ms from 'ms';
import { z } from 'zod';

export const positiveInt = () =>
  z.int({ error: 'expected a positive integer' }).min(1, { error: 'expected a positive integer' });
export const nonNegativeInt = () =>
  z
    .int({ error: 'expected a whole number of 0 or more' })
    .min(0, { error: 'expected a whole number of 0 or more' });
export const positiveNumber = () =>
  z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' });
/** A multiplier that lowers a score: above 0 (never to zero) and at most 1. */
export const factor = () =>
  z
    .number({ error: 'expected a factor between 0 (exclusive) and 1' })
    .gt(0, { error: 'expected a factor between 0 (exclusive) and 1' })
    .max(1, { error: 'expected a factor between 0 (exclusive) and 1' });
export const ratio = () =>
  z
    .number({ error: 'expected a share between 0 and 1' })
    .gt(0, { error: 'expected a share between 0 and 1' })
    .max(1, { error: 'expected a share between 0 and 1' });
export const flag = () => z.boolean({ error: 'expected true or false' });
export const text = () => z.string({ error: 'expected text' }).min(1, { error: 'expected non-empty text' });

/** A window or period written like 15m, 24h, 7d; validated to milliseconds. */
export const duration = () =>
  z.string({ error: 'expected a duration like 15m, 24h or 90d' }).transform((s, ctx) => {
    const v = /^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/.test(s.trim()) ? ms(s.trim() as ms.StringValue) : undefined;
    if (v === undefined || !Number.isFinite(v) || v <= 0) {
      ctx.issues.push({ code: 'custom', message: 'expected a duration like 15m, 24h or 90d', input: s });
      return z.NEVER;
    }
    return v;
  });

/** Writes milliseconds back the way analysts write them (15m, 2h, 90d). */
export function formatDuration(msValue: number): string {
  return ms(msValue);
}

/** Fields every signal's config block has; each signal adds its threshold and window. */
export const signalBase = {
  enabled: flag().default(true),
  weight: positiveNumber(),
  queue: text(),
  /** Strong signals keep part of their contribution however many mitigations apply. */
  strong: flag().default(false),
  /** May raise a flag without a signal from a second family. */
  sufficientAlone: flag().default(false),
  /** Strength is observed/threshold, capped here. */
  maxStrength: z
    .number({ error: 'expected a number of at least 1' })
    .min(1, { error: 'expected a number of at least 1' })
    .default(3),
};

export type SignalBaseParams = {
  enabled: boolean;
  weight: number;
  queue: string;
  strong: boolean;
  sufficientAlone: boolean;
  maxStrength: number;
};
