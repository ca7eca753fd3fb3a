/**
 * One structured logger (pino) for the process; endpoints take children
 * (`{ep: 'ldap'}`), connections take children of those (`{sid}`).
 * Level from DCMX_LOG_LEVEL (default info; tests set warn or silent).
 */
import pino from 'pino';

export type Logger = pino.Logger;

/** Creates the root logger writing JSON lines to stderr. */
export function createLogger(level = process.env.DCMX_LOG_LEVEL || 'info'): Logger {
  return pino({ level, base: { name: 'dcmx' } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything (tests, CLI). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
