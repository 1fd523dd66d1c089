import pino from 'pino';

/** Structured JSON logs on stdout; FAIRFLAG_LOG_LEVEL (default info) sets the level. */
export function createLogger(name = 'fairflag', destination?: pino.DestinationStream): pino.Logger {
  const level = process.env['FAIRFLAG_LOG_LEVEL'] ?? 'info';
  return destination ? pino({ name, level }, destination) : pino({ name, level });
}

export type Logger = pino.Logger;
