/**
 * The hand-over between two appliance processes on one data dir, for a
 * reload that refuses no connection (`pm2 reload`: the new process starts,
 * says it is ready, and only then is the old one asked to stop).
 *
 * One process at a time OWNS the data dir: it holds `dcmx.lock` there
 * (storage/owner-lock.ts, a kernel lock released when its process ends,
 * however it ends). The owner alone does what assumes it is the only one:
 * queue delivery and the spool sweep (two deliverers would deliver a message
 * twice; the sweep would take a file another process's intake has not
 * committed yet), the Maildir tmp/ sweep and the change-log retention.
 *
 * A process that finds the lock held is the SUCCESSOR of the appliance that
 * holds it. It opens the store (SQLite serializes the two processes' write
 * transactions, as it does the CLI's; each sees the other's commits through
 * its watch of other writers, writes.ts), binds the ports the owner holds
 * (every listener of dcmx binds with SO_REUSEPORT, so the kernel spreads new
 * connections over both until the owner closes its listeners) and serves:
 * intake queues mail, which the owner or, later, the successor delivers. It
 * polls the lock every POLL_MS and takes it once the owner has ended; from
 * then on it is the owner and starts the duties above. A predecessor still
 * running after `timeoutMs` is not being replaced but is a second appliance
 * started by mistake: the successor gives up (`owned` rejects).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './config';
import type { Logger } from './log';
import { tryLock, type HeldLock } from '../storage/owner-lock';

/** The lock file in the data dir. */
export const LOCK_FILE = 'dcmx.lock';

/** How long a successor waits for its predecessor to end (pm2's listen_timeout + kill_timeout is far below). */
export const HANDOVER_TIMEOUT_MS = 60_000;

/** How often a successor tries the lock. */
const POLL_MS = 50;

/** Linux 5.14+: a closing listener's queued connections move to another of its SO_REUSEPORT group instead of being reset. */
const MIGRATE_REQ = '/proc/sys/net/ipv4/tcp_migrate_req';

/** Whether the kernel resets, rather than moves, the connections queued on a listener that closes (tcp_migrate_req 0). */
function resetsQueuedConnections(): boolean {
  try {
    return fs.readFileSync(MIGRATE_REQ, 'utf8').trim() === '0';
  } catch {
    return false; // not Linux, or a kernel before 5.14: nothing to advise
  }
}

/** This process's claim on its data dir. */
export interface Ownership {
  /** True when no other appliance held the data dir when this one started (nothing to hand over). */
  readonly first: boolean;
  /**
   * Resolves once this process owns the data dir (at once when `first`);
   * rejects with a ConfigError naming DCMX_DATA_DIR when the predecessor
   * still runs after the hand-over bound, or when `release` came first.
   */
  readonly owned: Promise<void>;
  /** Whether this process owns the data dir now. */
  owns(): boolean;
  /** Lets the data dir go (at close), or stops waiting for it. */
  release(): void;
}

/** Claims `dataDir` for this process: owner at once, or successor of the appliance that holds it (see the module comment). */
export function claimDataDir(dataDir: string, log: Logger, opts: { timeoutMs?: number; pollMs?: number } = {}): Ownership {
  const file = path.join(dataDir, LOCK_FILE);
  let lock: HeldLock | undefined = tryLock(file);
  const first = lock !== undefined;
  let released = false;
  let timer: NodeJS.Timeout | undefined;
  let giveUp = (_e: Error) => undefined as void;
  let owned: Promise<void>;
  if (first) {
    owned = Promise.resolve();
  } else {
    log.info({ dataDir }, 'another dcmx appliance holds the data dir: serving beside it, and taking over its duties (delivery, sweeps, retention) once it has ended');
    if (resetsQueuedConnections()) {
      log.info('net.ipv4.tcp_migrate_req is 0: connections waiting in the old appliance\'s accept queue when it closes its listeners are reset; set it to 1 to have them moved here (README, Reloading under pm2)');
    }
    const timeoutMs = opts.timeoutMs ?? HANDOVER_TIMEOUT_MS;
    const since = Date.now();
    owned = new Promise<void>((resolve, reject) => {
      giveUp = reject;
      const poll = () => {
        timer = undefined;
        try {
          lock = tryLock(file);
        } catch (e) {
          reject(e);
          return;
        }
        if (lock) {
          log.info({ waitedMs: Date.now() - since }, 'the previous appliance has ended: this one owns the data dir now');
          resolve();
        } else if (Date.now() - since >= timeoutMs) {
          reject(new ConfigError('DCMX_DATA_DIR', `another dcmx appliance still runs on ${dataDir} after ${Math.round(timeoutMs / 1000)} s; ` +
            'stop it first (a reload replaces it: it ends once this one is ready)'));
        } else {
          timer = setTimeout(poll, opts.pollMs ?? POLL_MS);
        }
      };
      poll();
    });
    owned.catch(() => undefined); // the caller handles it; never an unhandled rejection
  }
  return {
    first,
    owned,
    owns: () => lock !== undefined && !released,
    release() {
      released = true;
      lock?.release();
      if (timer) clearTimeout(timer);
      timer = undefined;
      giveUp(new ConfigError('DCMX_DATA_DIR', 'stopped before the previous appliance had ended'));
    },
  };
}

/** A listener's ConfigError for a port in use (listen.ts listenError). */
function portInUse(e: unknown): boolean {
  return e instanceof ConfigError && e.message.endsWith(' is already in use');
}

/**
 * Starts a listener (`start` binds with reusePort). For a successor whose
 * predecessor holds the port without reusePort (a version before reloads),
 * the port is bound again once that one has ended; any other failure is
 * thrown as it is.
 */
export async function bindBeside<T>(ownership: Ownership, log: Logger, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    if (ownership.first || ownership.owns() || !portInUse(e)) throw e;
    log.warn({ err: (e as Error).message }, 'the previous appliance holds this port without SO_REUSEPORT (a version before reloads): binding it once that one has ended');
    await ownership.owned;
    return start();
  }
}
