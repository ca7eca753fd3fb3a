/**
 * One structured logger (pino) for the process; endpoints take children
 * (`{ep: 'ldap'}`), connections take children of those (`{sid}`).
 * Level from DCMX_LOG_LEVEL (default info; tests set warn or silent).
 */
import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Creates the root logger writing JSON lines to stdout: under pm2 they go
 * to its out log (stderr, its error log, keeps start-up failures: main.ts).
 */
export function createLogger(level = process.env.DCMX_LOG_LEVEL || 'info'): Logger {
  return pino({ level, base: { name: 'dcmx' } }, pino.destination({ fd: 1, sync: false }));
}

/**
 * A serving thread's logger: each record, as a JSON line without time or
 * process fields, goes to `write` (to the main thread, which logs it with
 * relogLine), so that one logger writes the process's log whatever the
 * thread. Records below `level` are dropped in the thread.
 */
export function forwardingLogger(level: string, write: (line: string) => void): Logger {
  return pino({ level, base: null, timestamp: false }, { write });
}

/** Logs a record of forwardingLogger on `log` (a child naming the thread), at its level, time stamped now. */
export function relogLine(log: Logger, line: string): void {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const { level, msg, ...rest } = rec;
  const label = log.levels.labels[Number(level)] as pino.Level | undefined;
  if (!label) return;
  const err = rest.err as { type?: string; message?: string; stack?: string } | undefined;
  if (err && typeof err === 'object') {
    // Back to an Error, so the serializer keeps its type and stack.
    const e = Object.assign(new Error(err.message), err);
    e.name = err.type ?? 'Error';
    e.stack = err.stack;
    rest.err = e;
  }
  log[label](rest, typeof msg === 'string' ? msg : undefined);
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
