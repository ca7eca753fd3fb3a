/**
 * What the main thread and a serving thread say to each other over their
 * channel (channel.ts), as data:
 * - the main thread serves the one writer (`write`: a WriteCommand, answered
 *   after its commit and the change clock's publication), the queue
 *   (`enqueue`: answered once the message is on disk), the process's
 *   counts (process-state.ts) and its log (`log`: the thread's records);
 * - a serving thread serves `listen` (bind the ports, answer the ports
 *   bound), `stats` (its figures) and `drain` (close its listeners, let its
 *   sessions end, close its store).
 * Errors cross typed: the directory's (writes.ts errorToData) and a bind
 * failure's ConfigError.
 */
import { ConfigError, type Config } from '../config';
import { errorFromData, errorToData, type ErrorData, type WriteCommand, type WriteResult } from '../directory/writes';
import type { QueueMessageRow } from '../../storage/queue';
import type { ServingPorts } from '../listen';
import type { TlsPair } from '../tls';
import type { ErrorCodec } from './channel';
import type { StateMethods } from './process-state';
import type { ThreadFigures } from './stats';

/** The methods of the main thread. */
export type MainMethods = StateMethods & {
  write: { args: WriteCommand; result: WriteResult };
  /**
   * A message accepted by a thread, its spool file (if any) already fsynced
   * there: the main thread's Delivery takes it (MessageQueue.accept: into
   * the Maildirs here at once, the rest as queue rows in a group commit
   * with every other thread's, one fsync for all) and answers; only then
   * does the client get its 250. One connection writes the queue, so rows
   * of several threads never contend for SQLite's write lock, and a message
   * is delivered by the main thread only.
   */
  enqueue: { args: { message: QueueMessageRow; rcpts: { rcpt: string; held: boolean }[]; now: number }; result: null };
  /** A log record of the thread (log.ts forwardingLogger), logged by the main thread's logger. */
  log: { args: string; result: null };
};

/** The methods of a serving thread. */
export type ThreadMethods = {
  listen: { args: ServingPorts; result: ServingPorts };
  stats: { args: null; result: ThreadFigures };
  drain: { args: null; result: null };
};

/** What a serving thread is started with (workerData). */
export interface ServingData {
  /** Its slot, 1..DCMX_THREADS. */
  slot: number;
  /** Times the slot's thread was replaced before this one. */
  restarts: number;
  /** The configuration, with this thread's share of the cache budgets. */
  config: Config;
  /** The change clock's shared memory (change-clock.ts). */
  clock: SharedArrayBuffer;
  /** The process's LDAP, DNS (TCP) and SMTP connection counts (connection-caps.ts capsBuffer); this thread counts in region slot - 1. */
  caps: { ldap: SharedArrayBuffer; dns: SharedArrayBuffer; smtp: SharedArrayBuffer };
  tls: TlsPair;
  /** pino level of the thread's log. */
  logLevel: string;
}

type CrossingError = ErrorData | { kind: 'config'; variable: string; message: string };

/** Errors between the threads: the directory's typed (writes.ts), a ConfigError as itself. */
export const THREAD_ERRORS: ErrorCodec = {
  toData(e): CrossingError {
    if (e instanceof ConfigError) return { kind: 'config', variable: e.variable, message: e.message };
    return errorToData(e);
  },
  fromData(d) {
    const data = d as CrossingError;
    if (data.kind === 'config') return new ConfigError(data.variable, data.message.slice(data.variable.length + 2));
    return errorFromData(data);
  },
};

/**
 * The configuration a serving thread runs with: the process's, with the
 * per-process cache budgets (DCMX_DNS_CACHE_ENTRIES, DCMX_CACHE_SIZE)
 * divided among the `threads` (at least one entry each; a disabled DNS
 * cache stays disabled).
 */
export function threadConfig(config: Config, threads: number): Config {
  const share = (n: number) => Math.max(1, Math.floor(n / threads));
  return {
    ...config,
    dns: { ...config.dns, cacheEntries: config.dns.cacheEntries === 0 ? 0 : share(config.dns.cacheEntries) },
    mta: { ...config.mta, cacheSize: share(config.mta.cacheSize) },
  };
}
