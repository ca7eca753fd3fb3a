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

/**
 * Rate limit for a log line that can repeat without end (a full disk fails
 * every attempt the same way): the first line of a kind goes out, then at
 * most one per `everyMs`, carrying how many were held back since the last.
 * Kinds are the caller's keys (a message and an error code, not ids), so
 * the set stays small; it is cleared when it passes `maxKinds`.
 */
export class RepeatLimiter {
  private readonly last = new Map<string, { at: number; held: number }>();

  constructor(private readonly everyMs = 60_000, private readonly maxKinds = 1000) {}

  /** undefined: drop this line; otherwise log it, with `suppressed` lines of its kind held back before it. */
  admit(kind: string, now = Date.now()): { suppressed: number } | undefined {
    const l = this.last.get(kind);
    if (l && now - l.at < this.everyMs) {
      l.held++;
      return undefined;
    }
    if (!l && this.last.size >= this.maxKinds) this.last.clear();
    this.last.set(kind, { at: now, held: 0 });
    return { suppressed: l?.held ?? 0 };
  }
}
