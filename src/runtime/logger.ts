import pino from 'pino';

// an error logged as `err` (or kafkajs's `error`) keeps its class, stack and causes
const serializers = { err: pino.stdSerializers.errWithCause, error: pino.stdSerializers.errWithCause };

/** Structured JSON logs on stdout; FAIRFLAG_LOG_LEVEL (default info) sets the level. */
export function createLogger(name = 'fairflag', destination?: pino.DestinationStream): pino.Logger {
  const level = process.env['FAIRFLAG_LOG_LEVEL'] ?? 'info';
  const options: pino.LoggerOptions = { name, level, serializers };
  return destination ? pino(options, destination) : pino(options);
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The log of a command people read (demo, replay, diff, explain, check-config): its report owns
 * stdout. Asked for a level (--log-level), JSON logs at that level on stderr; else only warnings
 * and errors, each as one line of text on stderr.
 */
export function toolLogger(level: string | undefined): pino.Logger {
  if (level) return pino({ name: 'fairflag', level, serializers }, pino.destination(2));
  return pino({ name: 'fairflag', level: 'warn', serializers }, humanStderr);
}

const LABELS: Record<number, string> = { 60: 'fatal', 50: 'error', 40: 'warning' };

/** One pino JSON line as text: "fairflag warning: <message>: <error message>". */
const humanStderr: pino.DestinationStream = {
  write(line: string) {
    let text = line.trimEnd();
    try {
      const o = JSON.parse(line) as { level: number; msg?: string; err?: { message?: string } };
      const err = o.err?.message ? `: ${o.err.message}` : '';
      text = `fairflag ${LABELS[o.level] ?? 'log'}: ${o.msg ?? ''}${err}`;
    } catch {
      // not JSON after all: printed as it is
    }
    process.stderr.write(`${text}\n`);
  },
};

export type Logger = pino.Logger;
