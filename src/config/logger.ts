// Logs: JSON lines on stderr through pino (levels as names, ISO times). The engine logs through
// this small interface, message first, so that call sites read the same whatever the backend.
import pino, { type Logger as PinoLogger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

function wrap(p: PinoLogger): Logger {
  return {
    debug: (m, f) => (f ? p.debug(f, m) : p.debug(m)),
    info: (m, f) => (f ? p.info(f, m) : p.info(m)),
    warn: (m, f) => (f ? p.warn(f, m) : p.warn(m)),
    error: (m, f) => (f ? p.error(f, m) : p.error(m)),
    child: (fields) => wrap(p.child(fields)),
  };
}

export function createLogger(level: LogLevel = 'info', base: Record<string, unknown> = {}): Logger {
  const p = pino(
    {
      level,
      // Every line names the product, so that logs shipped together can be told apart.
      base: { name: 'keelson', ...base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Errors under any of these keys are written with their name, message and stack.
      serializers: { err: pino.stdSerializers.err, cause: pino.stdSerializers.err },
    },
    // Written at once: a process killed right after a line still leaves the line.
    pino.destination({ fd: 2, sync: true }),
  );
  return wrap(p);
}

/** A logger that drops everything, for tests that do not want output. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
