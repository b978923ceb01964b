// Process logging: pino JSON lines (one object per event, machine-readable), or pino-pretty for a person at a
// terminal. Components log through child loggers ({ component: 'server' }, { conn: 7, remote: ... }) so every
// line says where it came from without string formatting on the hot path.
import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  level: string;
  /** auto: pretty when stdout is a terminal, JSON otherwise. */
  format?: LogFormat;
  /** Where lines go; default stdout. Tests pass a stream to read the lines back. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const format = options.format ?? 'auto';
  const usePretty = format === 'pretty' || (format === 'auto' && options.destination === undefined && process.stdout.isTTY === true);
  const base = { level: options.level, base: { pid: process.pid }, serializers: { err: pino.stdSerializers.err } };
  if (usePretty) {
    // In-thread and synchronous: no worker thread, and a fatal line is on the terminal before the process exits.
    const colorize = options.destination === undefined && process.stdout.isTTY === true;
    const stream = pretty({ colorize, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname',
      destination: options.destination ?? 1 });
    return pino(base, stream);
  }
  // Synchronous writes: logging is off the hot path (no per-request info lines), and nothing is lost on exit.
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
